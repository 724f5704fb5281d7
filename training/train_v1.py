"""Training CLI: fit on train, select the epoch on val AUROC, calibrate and pick thresholds on val.

Model v1, the residual CNN from scratch (Model v2, the shipped one, is :mod:`training.train_box`).

    python -m training.train_v1 --data-dir ../shared/datasets/fracatlas --epochs 50 --batch-size 32

Writes the model (no optimizer state), ``metadata.json``, ``history.csv`` and the radiograph
check's feature-space reference, refitted for the new model, to ``--output-dir``.
The test split is never touched here: ``python -m training.evaluate`` reports on it.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.classifier import compile_forward
from core.config import CLASS_NAMES, MODEL_FILENAME, MODELS_DIR
from core.metrics import apply_temperature
from core.preprocessing import ASPECT_MODES, CONTRAST_MODES, PreprocessConfig
from training.artefacts import (calibrate, git_commit, predict_fracture_probabilities, refit_radiograph_check,
                                write_artefacts)
from training.augmentation import AUGMENT_STRENGTHS, build_augmenter
from training.cli import run_training_cli
from training.config import DEFAULT_DATA_DIR, SHIPPED_ASPECT, SHIPPED_CONTRAST
from training.data import load_arrays, load_index, split_hash
from training.metrics import choose_thresholds
from training.model import ARCHITECTURES, CAM_LAYER, build_model


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train_v1", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=192)
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="residual")
    parser.add_argument("--aspect", choices=ASPECT_MODES, default=SHIPPED_ASPECT)
    parser.add_argument("--contrast", choices=CONTRAST_MODES, default=SHIPPED_CONTRAST)
    parser.add_argument("--augment", choices=AUGMENT_STRENGTHS, default="strong")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="cosine")
    parser.add_argument("--fracture-weight", type=float, default=1.5,
                        help="class weight of 'fractured' in the loss (not fractured = 1)")
    parser.add_argument("--patience", type=int, default=0,
                        help="stop after this many epochs without a better val AUROC (0 = never)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-per-class", type=int, default=None,
                        help="use at most this many images per class and split (quick runs, tests)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    return args


def _subset(samples, max_per_class):
    if max_per_class is None:
        return samples
    counts, kept = {}, []
    for sample in samples:
        key = (sample.split, sample.label)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] <= max_per_class:
            kept.append(sample)
    return kept


def _training_dataset(images, labels, batch_size, augmenter, seed):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y))
    if augmenter is not None:
        dataset = dataset.map(lambda x, y: (augmenter(x, training=True), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _val_auroc_selector(model, val_images, val_labels, total_epochs, patience):
    """A Keras callback that scores val AUROC after each epoch and keeps the best weights."""
    import keras
    from sklearn.metrics import roc_auc_score

    forward = compile_forward(model)

    class Selector(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best_auroc, self.best_epoch, self.best_weights = -1.0, 0, None
            self.history, self.started = [], time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            probabilities = predict_fracture_probabilities(forward, val_images)
            auroc = float(roc_auc_score(val_labels, probabilities))
            if auroc > self.best_auroc:
                self.best_auroc, self.best_epoch = auroc, epoch + 1
                self.best_weights = model.get_weights()
            seconds = time.perf_counter() - self.epoch_started
            self.history.append({"epoch": epoch + 1, "loss": round(float(logs["loss"]), 5),
                                 "val_auroc": round(auroc, 5), "seconds": round(seconds, 2)})
            print(f"epoch {epoch + 1:3d}/{total_epochs}  loss {logs['loss']:.4f}  "
                  f"val AUROC {auroc:.4f}  best {self.best_auroc:.4f} (epoch {self.best_epoch})  "
                  f"{seconds:.1f} s", flush=True)
            if patience and epoch + 1 - self.best_epoch >= patience:
                print(f"no better val AUROC for {patience} epochs; stopping", flush=True)
                model.stop_training = True

    return Selector()


def train(args: argparse.Namespace) -> dict:
    """Runs one training and writes its artefacts. Returns the metadata written."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    started = time.perf_counter()
    samples = _subset(load_index(args.data_dir), args.max_per_class)
    config = PreprocessConfig(args.image_size, args.aspect, args.contrast)
    by_split = {split: [s for s in samples if s.split == split] for split in ("train", "val")}
    for split, members in by_split.items():
        if len({s.label for s in members}) < 2:
            raise SystemExit(f"error: the {split} split needs images of both classes")
    train_images, train_labels = load_arrays(by_split["train"], config)
    val_images, val_labels = load_arrays(by_split["val"], config)
    print(f"loaded {len(train_images)} train / {len(val_images)} val images at "
          f"{args.image_size}px in {time.perf_counter() - started:.1f} s", flush=True)

    model = build_model(args.architecture, args.image_size)
    steps = args.epochs * int(np.ceil(len(train_images) / args.batch_size))
    learning_rate = (keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
                     if args.schedule == "cosine" else args.learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy")
    selector = _val_auroc_selector(model, val_images, val_labels, args.epochs, args.patience)
    dataset = _training_dataset(train_images, train_labels, args.batch_size,
                                build_augmenter(args.augment, seed=args.seed), args.seed)
    fit_started = time.perf_counter()
    model.fit(dataset, epochs=args.epochs, class_weight={0: 1.0, 1: args.fracture_weight},
              callbacks=[selector], verbose=0, shuffle=False)  # the dataset shuffles itself
    training_seconds = time.perf_counter() - fit_started
    model.set_weights(selector.best_weights)

    # A fresh, uncompiled copy saves without optimizer state.
    served = build_model(args.architecture, args.image_size)
    served.set_weights(model.get_weights())
    raw_val = predict_fracture_probabilities(compile_forward(served), val_images)
    temperature, ece_before, ece_after = calibrate(val_labels, raw_val)
    thresholds = choose_thresholds(val_labels, apply_temperature(raw_val, temperature))

    created = datetime.now(timezone.utc)
    metadata = {
        "model_file": MODEL_FILENAME,
        "model_version": f"{args.architecture}-{args.image_size}px-{created:%Y%m%d}",
        "architecture": args.architecture,
        "input_size": args.image_size,
        "class_names": list(CLASS_NAMES),
        "preprocessing": config.to_dict(),
        "cam_layer": CAM_LAYER,
        "thresholds": thresholds,
        "temperature": temperature,
        "val_ece_before_temperature": ece_before,
        "val_ece_after_temperature": ece_after,
        "data": {"directory": Path(args.data_dir).name, "split_hash": split_hash(samples),
                 "n_train": len(train_images), "n_val": len(val_images)},
        "training": {"epochs": args.epochs, "epochs_run": len(selector.history),
                     "best_epoch": selector.best_epoch, "best_val_auroc": selector.best_auroc,
                     "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                     "schedule": args.schedule, "augment": args.augment,
                     "fracture_weight": args.fracture_weight, "seed": args.seed,
                     "max_per_class": args.max_per_class,
                     "fit_seconds": round(training_seconds, 1),
                     "total_seconds": round(time.perf_counter() - started, 1)},
        "created": created.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    write_artefacts(args.output_dir, served, metadata, selector.history)
    refit_radiograph_check(args.output_dir, served, metadata, train_images, val_images)
    print(f"best val AUROC {selector.best_auroc:.4f} at epoch {selector.best_epoch}; "
          f"temperature {temperature:.3f}; thresholds "
          + ", ".join(f"{name} {value:.3f}" for name, value in thresholds.items())
          + f"; {training_seconds / 60:.1f} min; wrote {args.output_dir}", flush=True)
    return metadata


def main(argv=None) -> int:
    return run_training_cli(train, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
