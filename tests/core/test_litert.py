"""The LiteRT twin of the shipped model: recorded in metadata.json, refused when corrupt or not
the recorded file, and equal to Keras within the issue's tolerances."""

import json
import shutil

import numpy as np
import pytest

from core import artifacts
from core.config import MODELS_DIR
from core.litert import LiteRTError, LiteRTForward, read_checked
from core.metadata import MetadataError, ModelMetadata


@pytest.fixture(scope="module")
def shipped_metadata():
    metadata = artifacts.load_metadata()
    if metadata.litert is None:
        pytest.skip("the shipped model has no .tflite; run python -m training.litert_export")
    return metadata


def copied_model_dir(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(MODELS_DIR, target)
    return target


def test_the_shipped_model_records_its_tflite(shipped_metadata):
    assert shipped_metadata.litert.file == "fracture_cnn.tflite"
    forward = artifacts.load_litert(MODELS_DIR, shipped_metadata)
    assert forward.has_map and forward.input_size == shipped_metadata.input_size
    probabilities, summary, cells = forward(np.zeros((2, forward.input_size, forward.input_size, 1), np.float32))
    assert probabilities.shape == (2, 2) and summary.shape[0] == 2 and cells.shape[0] == 2


def test_a_corrupt_tflite_is_refused(shipped_metadata, tmp_path):
    model_dir = copied_model_dir(tmp_path)
    path = model_dir / shipped_metadata.litert.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LiteRTError, match="does not match metadata.json: sha256"):
        artifacts.load_litert(model_dir, artifacts.load_metadata(model_dir))


def test_a_tflite_of_another_model_is_refused(shipped_metadata, tmp_path):
    model_dir = copied_model_dir(tmp_path)
    stored = json.loads((model_dir / "metadata.json").read_text())
    stored["litert"]["sha256"] = "0" * 64  # the file converted from another model's weights
    (model_dir / "metadata.json").write_text(json.dumps(stored))
    with pytest.raises(LiteRTError, match="rerun python -m training.litert_export"):
        artifacts.load_litert(model_dir, artifacts.load_metadata(model_dir))


def test_a_missing_tflite_is_reported(shipped_metadata, tmp_path):
    model_dir = copied_model_dir(tmp_path)
    (model_dir / shipped_metadata.litert.file).unlink()
    with pytest.raises(FileNotFoundError, match="named in metadata.json is missing"):
        artifacts.load_litert(model_dir, artifacts.load_metadata(model_dir))


def test_bytes_that_are_no_litert_model_are_refused(tmp_path):
    path = tmp_path / "junk.tflite"
    path.write_bytes(b"not a flatbuffer at all" * 100)
    from core.litert import sha256_of

    with pytest.raises(LiteRTError, match="not a usable LiteRT model"):
        LiteRTForward(read_checked(path, sha256_of(path.read_bytes())))


def test_the_record_is_typed(shipped_metadata):
    stored = dict(shipped_metadata.raw)
    without = {key: value for key, value in stored.items() if key != "litert"}
    assert ModelMetadata.parse(without).litert is None
    with pytest.raises(MetadataError, match="litert: field 'sha256' must be 64"):
        ModelMetadata.parse({**stored, "litert": {"file": "x.tflite", "sha256": "abc"}})
    with pytest.raises(MetadataError, match="missing field 'file'"):
        ModelMetadata.parse({**stored, "litert": {"sha256": "0" * 64}})


def test_the_trainers_write_the_tflite_and_it_serves_the_tiny_model(trained_model, sample_paths):
    from core.classifier import LITERT, TENSORFLOW, FractureClassifier

    metadata = artifacts.load_metadata(trained_model.directory)
    assert metadata.litert is not None and (trained_model.directory / metadata.litert.file).is_file()
    # Its default heatmap is Grad-CAM, which needs gradients: the automatic choice is TensorFlow.
    assert FractureClassifier.load(trained_model.directory).runtime == TENSORFLOW
    on_litert = FractureClassifier.load(trained_model.directory, runtime=LITERT)
    on_tensorflow = FractureClassifier.load(trained_model.directory, runtime=TENSORFLOW)
    for path in sample_paths:
        assert on_litert.classify(path).probability_fractured == pytest.approx(
            on_tensorflow.classify(path).probability_fractured, abs=1e-5)


def test_the_export_command_writes_and_records_the_tflite(shipped_metadata, tmp_path, capsys):
    from training.litert_export import main

    model_dir = copied_model_dir(tmp_path)
    (model_dir / shipped_metadata.litert.file).unlink()
    stored = json.loads((model_dir / "metadata.json").read_text())
    del stored["litert"]
    (model_dir / "metadata.json").write_text(json.dumps(stored))
    main([str(model_dir)])
    assert "recorded in" in capsys.readouterr().out
    metadata = artifacts.load_metadata(model_dir)
    assert metadata.litert.file == shipped_metadata.litert.file
    forward = artifacts.load_litert(model_dir, metadata)
    shipped = artifacts.load_litert(MODELS_DIR, shipped_metadata)
    images = np.random.default_rng(3).integers(0, 256, (2, forward.input_size, forward.input_size, 1)).astype(np.float32)
    np.testing.assert_allclose(forward(images)[0], shipped(images)[0], atol=1e-6)
