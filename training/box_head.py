"""A fully convolutional fracture head on a frozen feature map, trainable with the radiologists' boxes.

Issue 11, lever 2. The head scores every cell of a backbone's feature map (1×1 conv → ReLU →
1×1 conv to one logit per cell) and pools the cell logits into the image's verdict, so the map it
draws is the map the verdict comes from. Box supervision adds a per-cell loss to the image-level
BCE: on a fractured image the cells under a radiologist's box are pushed up, on a normal image
every cell is pushed down. Cells of a fractured image outside its boxes carry no cell loss: a box
marks where a fracture is, not everywhere it is not.

Pooling is log-mean-exp, ``log(mean(exp(r · z))) / r``. A fracture fills a few cells of a
20 × 20 map: mean pooling would drown it in normal bone, while max pooling sends the whole
gradient to one cell and learns slowly and erratically. Log-mean-exp lies between the two
(``r → 0`` is the mean, ``r → ∞`` the max), gives every cell a softmax share of the gradient,
and subtracting ``log(cells)`` keeps it on the same scale at every grid size.

Boxes (``boxes.csv``) are normalised to the ORIGINAL image; :func:`box_cell_mask` carries them
through the letterbox of :func:`core.preprocessing.preprocess` onto the grid of cells.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from core.layers import log_mean_exp
from core.preprocessing import PreprocessConfig, content_box
from training.localisation import Box, box_mask

# Channels of the packed target that :class:`BoxSupervisedLoss` reads, per cell.
CELL_TARGET, CELL_WEIGHT, IMAGE_LABEL = 0, 1, 2


@dataclass(frozen=True)
class HeadConfig:
    """How the head is built and trained.

    Attributes:
        hidden: Channels of the hidden conv.
        kernel: Side of the hidden conv: 1 judges each cell alone, 3 lets it see its neighbours.
        dropout: Dropout rate on the features and on the hidden layer (whole channels are
            dropped, as neighbouring cells of one channel are strongly correlated).
        weight_decay: AdamW's decoupled weight decay.
        box_weight: Weight of the per-cell box loss next to the image BCE; 0 trains the
            image-only control.
        sharpness: ``r`` of the log-mean-exp pooling.
        epochs: Passes over the training features (cosine learning-rate decay over all of them).
        batch_size: Images per step.
        learning_rate: Peak learning rate.
        seed: Seeds weights, dropout and shuffling.
    """

    hidden: int = 64
    kernel: int = 1
    dropout: float = 0.3
    weight_decay: float = 1e-3
    box_weight: float = 1.0
    sharpness: float = 1.0
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1; got {self.kernel}")
        if self.hidden < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"hidden, epochs and batch_size must be >= 1; got {self.hidden}, "
                             f"{self.epochs}, {self.batch_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")
        if self.box_weight < 0 or self.weight_decay < 0 or self.sharpness <= 0 or self.learning_rate <= 0:
            raise ValueError("box_weight and weight_decay must be >= 0, sharpness and learning_rate > 0; got "
                             f"{self.box_weight}, {self.weight_decay}, {self.sharpness}, {self.learning_rate}")


@dataclass(frozen=True)
class TrainedHead:
    """A trained head and what its training cost.

    Attributes:
        model: Feature map (N, g, g, C) → cell logits (N, g, g, 1).
        config: How it was trained.
        train_seconds: Wall time of ``fit``.
        epoch_val_auroc: Val AUROC after each epoch (empty without validation data); recorded to
            show the curve, the reported figure is the last epoch's.
        epoch_loss: Mean training loss of each epoch.
    """

    model: keras.Model
    config: HeadConfig
    train_seconds: float
    epoch_val_auroc: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class HeadOutput:
    """What a head says about a batch of feature maps.

    Attributes:
        probability_fractured: (N,) sigmoid of the pooled logit.
        cell_probability: (N, g, g) sigmoid of each cell's logit: the head's own fracture map.
    """

    probability_fractured: np.ndarray
    cell_probability: np.ndarray


def box_cell_mask(source_shape: tuple[int, int], boxes: Sequence[Box], config: PreprocessConfig,
                  grid: int) -> np.ndarray:
    """Cells of a ``grid × grid`` feature map that overlap any of an image's boxes.

    Args:
        source_shape: (H, W) of the image as read, before preprocessing.
        boxes: ``(x_min, y_min, x_max, y_max)`` normalised to that image.
        config: The preprocessing that made the model input (its letterbox places the boxes).
        grid: Side of the feature map; the model input must be a whole number of cells.

    Returns:
        Boolean (grid, grid); all False without boxes.

    Raises:
        ValueError: If ``image_size`` is not a multiple of ``grid``.
    """
    side = config.image_size
    if grid < 1 or side % grid:
        raise ValueError(f"a {side} px input does not divide into a {grid} × {grid} grid")
    box = content_box(source_shape, config)
    top, left, height, width = box.top, box.left, box.height, box.width
    on_input = [((left + x_min * width) / side, (top + y_min * height) / side,
                 (left + x_max * width) / side, (top + y_max * height) / side)
                for x_min, y_min, x_max, y_max in boxes]
    return box_mask((grid, grid), on_input)


def pack_targets(labels: np.ndarray, cell_masks: np.ndarray) -> np.ndarray:
    """The (N, g, g, 3) float32 target :class:`BoxSupervisedLoss` reads.

    A fractured image's cells under a box get target 1 and weight 1, its other cells weight 0; a
    fractured image without boxes (or a shifted view whose boxes moved: pass an empty mask) has no
    cell loss; a normal image's cells all get target 0 and weight 1.

    Raises:
        ValueError: On mismatched lengths or labels other than 0/1.
    """
    labels = np.asarray(labels)
    cell_masks = np.asarray(cell_masks, dtype=bool)
    if cell_masks.ndim != 3 or len(labels) != len(cell_masks):
        raise ValueError(f"expected N labels and (N, g, g) masks; got {labels.shape} and {cell_masks.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1; got {sorted(set(labels.tolist()))}")
    fractured = (labels == 1)[:, None, None]
    targets = np.zeros(cell_masks.shape + (3,), np.float32)
    targets[..., CELL_TARGET] = cell_masks & fractured
    targets[..., CELL_WEIGHT] = np.where(fractured, cell_masks, True)
    targets[..., IMAGE_LABEL] = fractured
    return targets


def pool_cell_logits(cell_logits, sharpness: float = 1.0):
    """Image logits (N,) from cell logits (N, g, g, 1) or (N, g, g), by log-mean-exp (the shipped
    model's own pooling, :func:`core.layers.log_mean_exp`)."""
    return log_mean_exp(cell_logits, sharpness)


class BoxSupervisedLoss(keras.losses.Loss):
    """Image BCE on the pooled logit plus ``box_weight`` × the mean cell BCE over weighted cells.

    ``y_true`` is :func:`pack_targets`'s array, ``y_pred`` the head's cell logits.
    """

    def __init__(self, box_weight: float, sharpness: float, name: str = "box_supervised"):
        super().__init__(name=name)
        self.box_weight = box_weight
        self.sharpness = sharpness

    def call(self, y_true, y_pred):
        cell_logits = y_pred[..., 0]
        labels = y_true[:, 0, 0, IMAGE_LABEL]
        image_logits = pool_cell_logits(cell_logits, self.sharpness)
        image_loss = keras.ops.binary_crossentropy(labels, image_logits, from_logits=True)
        weights = y_true[..., CELL_WEIGHT]
        cell_losses = keras.ops.binary_crossentropy(y_true[..., CELL_TARGET], cell_logits, from_logits=True)
        cell_loss = (keras.ops.sum(weights * cell_losses, axis=(1, 2))
                     / keras.ops.maximum(keras.ops.sum(weights, axis=(1, 2)), 1.0))
        return image_loss + self.box_weight * cell_loss


def build_head(feature_shape: tuple[int, int, int], config: HeadConfig) -> keras.Model:
    """Feature map (g, g, C) → cell logits (g, g, 1); uncompiled."""
    features = keras.Input(feature_shape, name="features")
    x = keras.layers.SpatialDropout2D(config.dropout)(features)
    x = keras.layers.Conv2D(config.hidden, config.kernel, padding="same", activation="relu", name="cell_hidden")(x)
    x = keras.layers.SpatialDropout2D(config.dropout)(x)
    cell_logits = keras.layers.Conv2D(1, 1, name="cell_logits")(x)
    return keras.Model(features, cell_logits, name="box_head")


def predict_head(model: keras.Model, features: np.ndarray, sharpness: float, *,
                 batch_size: int = 64) -> HeadOutput:
    """Verdicts and cell maps for (N, g, g, C) features."""
    cell_logits = model.predict(features, batch_size=batch_size, verbose=0)
    image_logits = keras.ops.convert_to_numpy(pool_cell_logits(cell_logits, sharpness))
    return HeadOutput(probability_fractured=_sigmoid(image_logits), cell_probability=_sigmoid(cell_logits[..., 0]))


def train_head(features: np.ndarray, labels: np.ndarray, cell_masks: np.ndarray, config: HeadConfig, *,
               validation: tuple[np.ndarray, np.ndarray] | None = None, verbose: int = 0) -> TrainedHead:
    """Fits a head on cached features.

    Args:
        features: (N, g, g, C) feature maps, float16 or float32.
        labels: (N,) 0/1.
        cell_masks: (N, g, g) boolean, from :func:`box_cell_mask` (all False where no boxes apply).
        config: Architecture and training.
        validation: ``(features, labels)`` to record val AUROC after each epoch; never used to
            stop or pick an epoch.
        verbose: Keras's ``fit`` verbosity.

    Returns:
        The head after the last epoch, with its training time.
    """
    keras.utils.set_random_seed(config.seed)
    model = build_head(tuple(features.shape[1:]), config)
    steps = config.epochs * math.ceil(len(features) / config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                  loss=BoxSupervisedLoss(config.box_weight, config.sharpness))
    epoch_val_auroc: list[float] = []
    callbacks = [] if validation is None else [_ValAuroc(validation, config.sharpness, epoch_val_auroc)]
    started = time.perf_counter()
    batches = _ShuffledBatches(features, pack_targets(labels, cell_masks), config.batch_size, config.seed)
    history = model.fit(batches, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    return TrainedHead(model, config, time.perf_counter() - started, epoch_val_auroc,
                       [float(loss) for loss in history.history["loss"]])


class _ShuffledBatches(keras.utils.PyDataset):
    """Shuffled float32 batches cut from float16 features: ``fit`` on the arrays themselves would
    copy all of them to float32 tensors first (several GB at 384 px)."""

    def __init__(self, features: np.ndarray, targets: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.features, self.targets, self.batch_size = features, targets, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(features))

    def __len__(self) -> int:
        return math.ceil(len(self.features) / self.batch_size)

    def __getitem__(self, index: int):
        rows = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return self.features[rows].astype(np.float32), self.targets[rows]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.features))


class _ValAuroc(keras.callbacks.Callback):
    def __init__(self, validation, sharpness: float, record: list[float]):
        super().__init__()
        self.features, self.labels = validation
        self.sharpness = sharpness
        self.record = record

    def on_epoch_end(self, epoch, logs=None):
        from sklearn.metrics import roc_auc_score

        output = predict_head(self.model, self.features, self.sharpness)
        self.record.append(float(roc_auc_score(self.labels, output.probability_fractured)))


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))).astype(np.float32)
