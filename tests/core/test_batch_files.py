"""Tests for core.batch_files: listing the files a run's paths stand for, output folders, overlay
names and overlay writing, without the CLI around them."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import batch_files
from core.batch_files import (IMAGE_SUFFIXES, Input, OutputFolderError, OverlayWriter, expand_inputs,
                              make_output_folder, unique_overlay_name, write_overlay)
from core.scoring import ScoredFile


def test_a_file_is_kept_as_named_whatever_its_name_or_whether_it_exists(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    assert expand_inputs([str(notes), "missing.png"]) == [Input(str(notes)), Input("missing.png")]


def test_a_folder_stands_for_its_image_files_sorted_folder_by_folder(tmp_path):
    for name in ("b.png", "a/2.jpg", "a/1.PNG", "IM0001", "1.2.840.10008.5", "a/deeper/x.dicom",
                 ".hidden.png", ".cache/y.png", "DICOMDIR", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [item.path for item in expand_inputs([str(tmp_path)])] == [
        str(tmp_path / name) for name in ("1.2.840.10008.5", "IM0001", "a/1.PNG", "a/2.jpg", "a/deeper/x.dicom",
                                          "b.png")]


def test_a_folder_without_image_files_is_one_input_with_its_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    [item] = expand_inputs([str(tmp_path)])
    assert item.path == str(tmp_path)
    assert item.error.startswith("no image files in this folder or below it")
    assert all(suffix in item.error for suffix in IMAGE_SUFFIXES)


def test_make_output_folder_creates_missing_parents(tmp_path):
    folder = tmp_path / "a" / "b" / "maps"
    make_output_folder(folder)
    make_output_folder(folder)  # already there: nothing to do
    assert folder.is_dir()


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_an_output_folder_that_cannot_be_made_is_an_output_folder_error(tmp_path, where):
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    folder = existing if where == "file" else existing / "maps"
    with pytest.raises(OutputFolderError) as raised:
        make_output_folder(folder)
    assert isinstance(raised.value, ValueError)
    assert raised.value.folder == folder
    assert "not a directory" in raised.value.reason.lower()
    assert str(raised.value) == f"{folder}: {raised.value.reason}"
    assert existing.read_text() == "keep me"


def test_overlay_names_are_numbered_when_file_names_repeat():
    taken: set[str] = set()
    names = [unique_overlay_name(path, taken, method) for path, method in
             (("a/x.png", "gradcam"), ("b/x.jpg", "gradcam"), ("c/x", "gradcam"), ("y.dcm", "fracturemap"))]
    assert names == ["x_gradcam.png", "x_2_gradcam.png", "x_3_gradcam.png", "y_fracturemap.png"]
    assert taken == set(names)


def test_an_overlay_name_is_cut_to_the_file_name_limit_on_a_character_boundary():
    taken: set[str] = set()
    stem = "é" * 127  # 254 bytes in UTF-8
    first, second = (unique_overlay_name(f"{stem}.png", taken, "gradcam") for _ in range(2))
    assert first != second and first.endswith("_gradcam.png") and second.endswith("_2_gradcam.png")
    assert all(len(name.encode()) <= 255 and set(name.split("_")[0]) == {"é"} for name in (first, second))


def _scored(path: str, method: str = "gradcam") -> ScoredFile:
    """A ScoredFile whose result is only what OverlayWriter reads of it (its heatmap method)."""
    return ScoredFile(path, result=type("Result", (), {"heatmap_method": method})())


@pytest.mark.parametrize("workers", [0, 2])
def test_overlay_writer_names_overlays_in_the_order_added_on_any_number_of_threads(monkeypatch, tmp_path, workers):
    monkeypatch.setattr(batch_files, "write_overlay",
                        lambda path, result, classifier: path.write_text(f"{result.heatmap_method} by {classifier}"))
    with OverlayWriter(tmp_path, "the classifier", workers) as overlays:
        for path in ("a/x.png", "b/x.png", "y.png"):
            overlays.add(_scored(path))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x_2_gradcam.png", "x_gradcam.png", "y_gradcam.png"]
    assert (tmp_path / "y_gradcam.png").read_text() == "gradcam by the classifier"


def test_overlay_writer_without_a_folder_writes_nothing(monkeypatch):
    monkeypatch.setattr(batch_files, "write_overlay", lambda *_: pytest.fail("no overlay should be written"))
    with OverlayWriter(None, "the classifier", 2) as overlays:
        overlays.add(_scored("x.png"))
    assert overlays.pool is None and not overlays.taken


def test_overlay_writer_raises_a_failed_write_when_it_is_waited_for(monkeypatch, tmp_path):
    def full_disk(path, result, classifier):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch_files, "write_overlay", full_disk)
    with pytest.raises(OSError, match="No space left"):
        with OverlayWriter(tmp_path, "the classifier", 1) as overlays:
            overlays.add(_scored("x.png"))


def test_write_overlay_writes_the_results_overlay_as_png(tmp_path, classifier, sample_paths):
    from core.overlay import overlay_on_original

    result = classifier.classify(str(sample_paths[0]), heatmap="gradcam")
    write_overlay(tmp_path / "x.png", result, classifier)
    expected = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config)
    with Image.open(tmp_path / "x.png") as written:
        assert written.mode == "RGB" and np.array_equal(np.asarray(written), expected)
    assert Path(tmp_path / "x.png").read_bytes().startswith(b"\x89PNG")
