"""A hostile or damaged model folder is a clear usage error of the CLI (exit 2, one line naming
the file and the fault), never a traceback, and never a file read outside the folder."""

import json
import shutil
import subprocess
import sys

import pytest

from core import artifacts
from core.config import METADATA_FILENAME, MODELS_DIR, PROJECT_DIR
from core.metadata import MetadataError, ModelMetadata

SAMPLE = PROJECT_DIR / "assets" / "samples" / "IMG0001063.jpg"


@pytest.fixture
def model_copy(tmp_path):
    if not (MODELS_DIR / METADATA_FILENAME).is_file():
        pytest.skip(f"no shipped model in {MODELS_DIR}")
    return shutil.copytree(MODELS_DIR, tmp_path / "model")


def _with_metadata(folder, **changes):
    metadata = json.loads((folder / METADATA_FILENAME).read_text())
    (folder / METADATA_FILENAME).write_text(json.dumps({**metadata, **changes}))
    return folder


def _predict(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.predict", str(SAMPLE), "--json", "--model-dir", str(folder)],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", ["/etc/passwd", "../models/fracture_cnn.keras", "sub/model.keras",
                                  "..\\\\model.keras", "", ".."])
def test_a_model_file_outside_the_models_folder_is_refused(model_copy, name):
    with pytest.raises(MetadataError, match="model_file.*must be a file name in the model's folder"):
        artifacts.load_metadata(_with_metadata(model_copy, model_file=name))


def test_metadata_that_is_not_an_object_or_not_json_is_a_metadata_error(model_copy):
    (model_copy / METADATA_FILENAME).write_text("[1, 2]")
    with pytest.raises(MetadataError, match="must be a JSON object; got list"):
        artifacts.load_metadata(model_copy)
    (model_copy / METADATA_FILENAME).write_bytes(b"\xff\xfe{")
    with pytest.raises(MetadataError, match="is not JSON"):
        artifacts.load_metadata(model_copy)


@pytest.mark.parametrize("field, value, message", [
    ("temperature", "hot", "field 'temperature' must be a finite number"),
    ("input_size", 22.5, "field 'input_size' must be an integer"),
    ("model_version", None, "missing field 'model_version'"),
])
def test_a_mistyped_or_missing_field_is_named(model_copy, field, value, message):
    metadata = json.loads((MODELS_DIR / METADATA_FILENAME).read_text())
    metadata = {key: item for key, item in metadata.items() if key != field} if value is None else {**metadata, field: value}
    with pytest.raises(MetadataError, match=message):
        ModelMetadata.parse(metadata)


def test_a_damaged_model_file_is_an_unusable_model_error(model_copy):
    (model_copy / "fracture_cnn.keras").write_bytes(b"PK not really a zip" * 100)
    metadata = artifacts.load_metadata(model_copy)
    with pytest.raises(artifacts.UnusableModelError, match="is not a .keras archive"):
        artifacts.load_network(model_copy, metadata)


@pytest.mark.parametrize("damage", ["outside file", "list", "damaged model"])
def test_the_cli_answers_a_hostile_model_folder_with_a_usage_error(model_copy, damage):
    if damage == "outside file":
        _with_metadata(model_copy, model_file="/etc/passwd")
    elif damage == "list":
        (model_copy / METADATA_FILENAME).write_text("[]")
    else:
        (model_copy / "fracture_cnn.keras").write_bytes(b"\0" * 4096)
    finished = _predict(model_copy)
    assert finished.returncode == 2, finished.stderr[-2000:]
    assert "Traceback" not in finished.stderr and finished.stdout == ""
    assert finished.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "root:" not in finished.stderr  # nothing of /etc/passwd is quoted
