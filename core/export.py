"""Export the shipped model as a TensorFlow SavedModel, for people who serve it elsewhere.

    python -m core.export --output DIR [--model-dir models] [--force]

DIR receives a SavedModel (TF Serving, Triton, ``tf.saved_model.load``), ``preprocessing.json``
and a ``README.md``. Its signature :data:`SIGNATURE` (also ``serving_default``) takes the
preprocessed model input and returns :data:`PROBABILITY` (calibrated with the shipped
temperature, as :class:`~core.classifier.FractureClassifier` computes it) and :data:`HEATMAP`,
the model's default heatmap (``metadata["default_heatmap"]``): Grad-CAM
(:func:`~core.heatmaps.grad_cam_function`, the code the app compiles) or a box model's own
fracture map (:func:`~core.heatmaps.fracture_map_function`). ``preprocessing.json`` names it. Decoding and preprocessing stay outside the graph
(OpenCV's CLAHE has no TensorFlow equivalent); ``preprocessing.json`` says how to reproduce them.

Exit status: 0 when written, 2 on bad usage (a missing model, an output folder that is not
empty without ``--force``, or one that cannot be written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.classifier import FractureClassifier
from core.config import FRACTURED, MODELS_DIR
from core.heatmaps import METHODS, TRACEABLE_METHODS, graph_function
from core.imaging import MAX_OUTPUT_PIXELS
from core.metrics import EPS
from core.preprocessing import CLAHE_CLIP_LIMIT, CLAHE_TILES, STRETCH_PERCENTILES, WORKING_LONG_SIDE

SIGNATURE = "classify_and_explain"  # float32 input
UINT8_SIGNATURE = "classify_and_explain_uint8"  # the same, for uint8 input (4x smaller requests)
DEFAULT_SIGNATURE = "serving_default"  # what TF Serving calls by default: SIGNATURE under a second name
SIGNATURES = (SIGNATURE, DEFAULT_SIGNATURE, UINT8_SIGNATURE)
INPUT = "model_input"
PROBABILITY = "probability_fractured"
HEATMAP = "heatmap"
CONTRACT_FILENAME = "preprocessing.json"
README_FILENAME = "README.md"
PIXEL_RANGE = (0.0, 255.0)


class ExportError(ValueError):
    """The export cannot be written where it was asked (the message says why)."""


@dataclass(frozen=True)
class ExportedModel:
    """Where an export was written and what it serves."""

    directory: Path
    model_version: str
    signatures: tuple[str, ...]
    image_size: int


def export_saved_model(classifier: FractureClassifier, output_dir: str | Path, *,
                       force: bool = False) -> ExportedModel:
    """Writes ``classifier``'s verdict and default heatmap as a SavedModel, with its preprocessing contract.

    The files are written to a temporary folder beside ``output_dir`` and moved in at the end, so
    a failed export leaves ``output_dir`` as it was.

    Args:
        classifier: the loaded model; its metadata must name a ``cam_layer``.
        output_dir: the folder to write; it must be absent or empty unless ``force``.
        force: replace the files of a previous export in a non-empty ``output_dir`` (other files
            there are left alone).

    Returns:
        The :class:`ExportedModel`.

    Raises:
        ExportError: ``output_dir`` is not a folder, not empty (without ``force``) or not writable,
            or writing failed.
        ValueError: the model's metadata names no ``cam_layer``, or its default heatmap is one
            the export cannot trace.
    """
    output_dir = Path(output_dir)
    _check_output_dir(output_dir, force=force)
    if classifier.explainer is None:
        raise ValueError("this model's metadata names no cam_layer, so its heatmap cannot be exported")
    if classifier.default_heatmap not in TRACEABLE_METHODS:
        raise ValueError(f"the model's default heatmap {classifier.default_heatmap!r} cannot be exported; "
                         f"only {' and '.join(TRACEABLE_METHODS)} can")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent))
    except OSError as error:
        raise ExportError(f"{output_dir}: cannot write there: {error.strerror or error}") from None
    try:
        _write_archive(classifier, staging)
        contract = preprocessing_contract(classifier)
        (staging / CONTRACT_FILENAME).write_text(json.dumps(contract, indent=2) + "\n")
        (staging / README_FILENAME).write_text(_readme(contract))
        for entry in sorted(staging.iterdir()):
            _replace(output_dir / entry.name, entry)
    except OSError as error:  # a full disk, a quota, a file of that name that cannot be removed
        raise ExportError(f"{output_dir}: writing the export failed: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportedModel(output_dir, classifier.version, SIGNATURES, classifier.preprocess_config.image_size)


def _check_output_dir(output_dir: Path, *, force: bool) -> None:
    """Refuses, before any slow work, a folder the export could not or should not write.

    Raises:
        ExportError: ``output_dir`` is a file, is a non-empty folder and ``force`` is false, or
            cannot be created or written.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise ExportError(f"{output_dir}: exists and is not a directory")
    if output_dir.is_dir() and not force:
        entries = sorted(entry.name for entry in output_dir.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise ExportError(f"{output_dir}: not empty ({len(entries)} entries: {shown}); choose a new "
                              f"or empty folder, or pass --force to replace a previous export there")
    # The nearest folder that exists must take new entries: the output itself, or the parent the
    # output will be created in (the staging folder is made beside the output, in its parent).
    existing = output_dir.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    for folder in {existing, output_dir} if output_dir.is_dir() else {existing}:
        if not folder.is_dir():
            raise ExportError(f"{output_dir}: cannot be created: {folder} is not a directory")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ExportError(f"{output_dir}: cannot write there: {folder} is not writable")


def _serving_function(classifier: FractureClassifier):
    """``model_input -> {probability_fractured, heatmap}``, the function each signature traces.

    The heatmap is the model's default, traced from :func:`core.heatmaps.graph_function`. Calibration
    is :func:`core.metrics.apply_temperature` in TensorFlow: sigmoid(logit(clip(p)) / T) of the
    softmax's P(fractured), in float32 (within 1e-7 of the float64 original).
    """
    import tensorflow as tf

    classify_and_explain = graph_function(classifier.default_heatmap, classifier.model, classifier.explainer.cam_layer)
    temperature = classifier.temperature

    def classify_and_explain_inputs(model_input):
        images = tf.cast(model_input, tf.float32)
        # An input outside 0..255 is not a preprocessed image; refusing it beats a confident
        # number. (Inputs scaled to 0..1 pass, and are the caller's mistake the README warns of.)
        checks = [tf.debugging.assert_greater_equal(images, PIXEL_RANGE[0], message=_RANGE_MESSAGE),
                  tf.debugging.assert_less_equal(images, PIXEL_RANGE[1], message=_RANGE_MESSAGE)]
        with tf.control_dependencies(checks):
            probabilities, heatmaps = classify_and_explain(tf.identity(images), FRACTURED)
        fractured = tf.clip_by_value(probabilities[:, FRACTURED], EPS, 1.0 - EPS)
        logit = tf.math.log(fractured) - tf.math.log1p(-fractured)
        return {PROBABILITY: tf.sigmoid(logit / temperature), HEATMAP: heatmaps}

    return classify_and_explain_inputs


_RANGE_MESSAGE = (f"{INPUT} must be a preprocessed image with values in [0, 255] "
                  f"(see {CONTRACT_FILENAME}); got a value outside")


def _write_archive(classifier: FractureClassifier, folder: Path) -> None:
    import keras
    import tensorflow as tf

    size = classifier.preprocess_config.image_size
    function = _serving_function(classifier)
    archive = keras.export.ExportArchive()
    archive.track(classifier.model)
    # ExportArchive writes the first endpoint added under DEFAULT_SIGNATURE as well.
    for name, dtype in ((SIGNATURE, tf.float32), (UINT8_SIGNATURE, tf.uint8)):
        model_input = tf.TensorSpec((None, size, size, 1), dtype, name=INPUT)
        archive.add_endpoint(name, function, input_signature=[model_input])
    archive.write_out(str(folder), verbose=False)


def preprocessing_contract(classifier: FractureClassifier) -> dict:
    """``preprocessing.json``: what a caller must do before the graph and may do after it."""
    size = classifier.preprocess_config.image_size
    metadata = classifier.metadata
    return {
        "model_version": classifier.version,
        "class_names": list(metadata.class_names),
        "signatures": {
            "names": list(SIGNATURES),
            "input": {"name": INPUT, "shape": [None, size, size, 1], "dtype": {SIGNATURE: "float32",
                      UINT8_SIGNATURE: "uint8"}, "range": list(PIXEL_RANGE)},
            "outputs": {PROBABILITY: {"shape": [None], "dtype": "float32",
                                      "meaning": "calibrated P(fractured); temperature already applied"},
                        HEATMAP: {"shape": [None, size, size], "dtype": "float32", "range": [0.0, 1.0],
                                  "method": classifier.default_heatmap,
                                  "meaning": f"{METHODS[classifier.default_heatmap]} for 'fractured' on the "
                                             f"model input, each map divided by its own peak (all zero: no "
                                             f"evidence)"}},
        },
        "preprocessing": classifier.preprocess_config.to_dict(),
        "preprocessing_constants": {"decode_max_output_pixels": MAX_OUTPUT_PIXELS,
                                    "working_long_side": WORKING_LONG_SIDE, "clahe_clip_limit": CLAHE_CLIP_LIMIT,
                                    "clahe_tiles": list(CLAHE_TILES),
                                    "stretch_percentiles": list(STRETCH_PERCENTILES)},
        "temperature": classifier.temperature,
        "thresholds": {name: classifier.thresholds[name] for name in classifier.thresholds},
        "decision_rule": f"fractured iff {PROBABILITY} >= threshold",
    }


def _replace(target: Path, new: Path) -> None:
    """Moves ``new`` to ``target``, removing a previous export's entry of that name first."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    new.rename(target)


def _readme(contract: dict) -> str:
    size = contract["preprocessing"]["image_size"]
    thresholds = "\n".join(f"| `{name}` | {value!r} |" for name, value in contract["thresholds"].items())
    constants = contract["preprocessing_constants"]
    return _README_TEMPLATE.format(version=contract["model_version"], size=size, signature=SIGNATURE,
                                   uint8_signature=UINT8_SIGNATURE, default_signature=DEFAULT_SIGNATURE,
                                   input=INPUT, probability=PROBABILITY, heatmap=HEATMAP,
                                   heatmap_method=METHODS[contract["signatures"]["outputs"][HEATMAP]["method"]],
                                   contract=CONTRACT_FILENAME, thresholds=thresholds,
                                   temperature=contract["temperature"],
                                   max_output_pixels=constants["decode_max_output_pixels"],
                                   steps=_preprocessing_steps(contract["preprocessing"], constants))


_INTERPOLATION = "`INTER_AREA` when the new area is smaller, else `INTER_LINEAR`"


def _preprocessing_steps(preprocessing: dict, constants: dict) -> str:
    """The numbered recipe of :func:`core.preprocessing.preprocess` for this model's settings."""
    size, long_side = preprocessing["image_size"], constants["working_long_side"]
    steps = [
        f"`u8 = numpy.round(grey * 255)` as uint8; if the long side exceeds {long_side} px, "
        f"`scale = {long_side} / max(h, w)` and OpenCV resize (`INTER_AREA`) to sides "
        f"`max(1, round(side * scale))`.",
    ]
    if preprocessing["contrast"] == "clahe":
        steps.append(
            f"Contrast (`contrast: clahe`): `low, high = numpy.percentile(u8, {constants['stretch_percentiles']})`; "
            f"if `high > low`, `u8 = clip((u8 - low) * 255 / (high - low), 0, 255)` in float32, truncated to "
            f"uint8; then OpenCV CLAHE, clip limit {constants['clahe_clip_limit']}, tiles "
            f"{constants['clahe_tiles']}.")
    if preprocessing["aspect"] == "pad":
        steps.append(
            f"Letterbox (`aspect: pad`): `scale = {size} / max(h, w)`, new sides `max(1, round(side * scale))`, "
            f"OpenCV resize ({_INTERPOLATION}), pasted on black at top `({size} - new_h) // 2`, left "
            f"`({size} - new_w) // 2`.")
    else:
        steps.append(f"Stretch (`aspect: stretch`): OpenCV resize to {size} x {size} ({_INTERPOLATION}).")
    steps.append(f"Add a channel axis: ({size}, {size}, 1), uint8; stack images along a first axis.")
    return "\n".join(f"{number}. {step}" for number, step in enumerate(steps, start=2))


_README_TEMPLATE = """\
# Bone fracture CNN `{version}`: SavedModel

Research software, **not a medical device**: never use it to diagnose, treat or triage anyone.

## Signatures

| signature | input `{input}` | outputs |
|---|---|---|
| `{signature}` (also `{default_signature}`) | float32 (N, {size}, {size}, 1), values 0..255 | `{probability}` float32 (N,); `{heatmap}` float32 (N, {size}, {size}) in [0, 1] |
| `{uint8_signature}` | uint8 (N, {size}, {size}, 1) | the same |

`{probability}` is already calibrated (temperature {temperature!r} applied in the graph): do
not apply it again. `{heatmap}` is {heatmap_method} for "fractured" on the {size} x {size} model input;
each map is divided by its own peak, and an all-zero map means no evidence. Verdict: fractured
iff `{probability} >= threshold`:

| threshold | value |
|---|---|
{thresholds}

```python
import tensorflow as tf
model = tf.saved_model.load("THIS_FOLDER")
outputs = model.signatures["{signature}"]({input}=tf.constant(batch, tf.float32))
outputs["{probability}"], outputs["{heatmap}"]
```

TF Serving wants a numbered version folder: export to `.../fracture/1`, then
`docker run -p 8501:8501 -v "$PWD/fracture:/models/fracture" -e MODEL_NAME=fracture tensorflow/serving`
and POST `{{"signature_name": "{signature}", "instances": batch.tolist()}}` to
`http://localhost:8501/v1/models/fracture:predict`.

## Preprocessing (outside the graph)

The input is what the project's `core.preprocessing.preprocess` returns; with the project
installed, `preprocess(read_image(path), PreprocessConfig.from_dict(contract["preprocessing"]))`
gives it exactly (`read_image` from `core.imaging`). Elsewhere, per image:

1. Decode to grey float in [0, 1], bone bright: EXIF orientation applied; 8-bit images through
   Pillow `convert("L")` / 255, 16-bit / 65535; DICOM after its modality and VOI LUTs,
   MONOCHROME1 inverted, min-max scaled; images over {max_output_pixels:,} pixels read reduced by
   the smallest integer factor that brings them within it.
{steps}

Do not scale to [0, 1]: the network rescales inside the graph, and an input in [0, 1] reads as
an almost black image. `{contract}` holds these settings, the thresholds, the temperature, the
class names and the model version as JSON.
"""


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="folder to write the SavedModel to")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR, help="the trained model (default: models/)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty folder, replacing a previous export's files")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    try:
        _check_output_dir(args.output, force=args.force)
        if not args.model_dir.is_dir():
            raise FileNotFoundError(f"--model-dir {args.model_dir}: no such directory")
        classifier = FractureClassifier.load(args.model_dir)
        exported = export_saved_model(classifier, args.output, force=args.force)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote model {exported.model_version} to {exported.directory}: signatures "
          f"{', '.join(exported.signatures)}; input {INPUT} (N, {exported.image_size}, {exported.image_size}, 1) "
          f"0..255; outputs {PROBABILITY}, {HEATMAP}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
