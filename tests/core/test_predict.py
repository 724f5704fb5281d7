"""Tests for the prediction CLI (core.predict) with the tiny trained model."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import METADATA_FILENAME
from core.predict import main
from tests.box_model_fixture import box_classifier, box_model_dir  # noqa: F401  (fixtures)

RESULT_KEYS = {"path", "probability_fractured", "decision", "threshold", "heatmap_peak", "looks_like_radiograph",
               "unlike_training_data"}


def has_result_keys(result: dict) -> bool:
    """Every result key, plus ``unreliable_because`` where either tier of the radiograph check flags it."""
    return RESULT_KEYS <= set(result) <= RESULT_KEYS | {"unreliable_because"} and (
        ("unreliable_because" in result) == (not result["looks_like_radiograph"] or result["unlike_training_data"]))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_paths, synth):
    """Two readable images (one square, one wide) and one garbage file, as strings."""
    folder = tmp_path_factory.mktemp("predict-inputs")
    square = shutil.copy(sample_paths[0], folder / "square.png")
    wide = synth.write_png(folder / "wide.png", synth.xray(True, seed=7, shape=(30, 70)))
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"<html>not an image</html>")
    return str(square), str(garbage), str(wide)


@pytest.fixture(scope="module")
def metadata(trained_model):
    return json.loads((trained_model.directory / METADATA_FILENAME).read_text())


def run_json(capsys, argv):
    code = main(argv + ["--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, [json.loads(line) for line in lines]


def test_json_lines_in_input_order_with_errors(capsys, trained_model, classifier, inputs, metadata):
    square, garbage, wide = inputs
    code, results = run_json(capsys, [square, garbage, wide, "--model-dir", str(trained_model.directory)])
    assert code == 1
    assert [result["path"] for result in results] == [square, garbage, wide]
    assert set(results[1]) == {"path", "error"}
    assert "expected an image file" in results[1]["error"]
    for result, path in ((results[0], square), (results[2], wide)):
        assert has_result_keys(result), result
        assert result["threshold"] == round(metadata["thresholds"]["balanced"], 6)  # the default
        probability = result["probability_fractured"]
        assert probability == pytest.approx(classifier.classify(path).probability_fractured, abs=1e-6)
        assert result["decision"] == ("fractured" if probability >= result["threshold"] else "not_fractured")


def test_all_readable_exits_zero(capsys, trained_model, inputs):
    square, _, wide = inputs
    code, results = run_json(capsys, [wide, square, "--model-dir", str(trained_model.directory)])
    assert code == 0
    assert [result["path"] for result in results] == [wide, square]
    assert all(has_result_keys(result) for result in results), results


@pytest.mark.parametrize("preset", ["screening", "specific"])
def test_named_threshold_uses_the_metadata_value(capsys, trained_model, inputs, metadata, preset):
    code, results = run_json(capsys, [inputs[0], "--threshold", preset,
                                      "--model-dir", str(trained_model.directory)])
    assert code == 0
    assert results[0]["threshold"] == round(metadata["thresholds"][preset], 6)


@pytest.mark.parametrize("threshold, decision", [("0", "fractured"), ("1", "not_fractured")])
def test_numeric_threshold(capsys, trained_model, inputs, threshold, decision):
    code, results = run_json(capsys, [inputs[0], "--threshold", threshold,
                                      "--model-dir", str(trained_model.directory)])
    assert code == 0
    assert results[0]["threshold"] == float(threshold)
    # P(fractured) is strictly between 0 and 1 for this model, so the extremes decide the verdict.
    assert 0.0 < results[0]["probability_fractured"] < 1.0
    assert results[0]["decision"] == decision


@pytest.mark.parametrize("threshold", ["2", "-0.5", "lenient"])
def test_bad_threshold_is_a_usage_error(capsys, trained_model, inputs, threshold):
    with pytest.raises(SystemExit) as exit_info:
        main([inputs[0], "--threshold", threshold, "--model-dir", str(trained_model.directory)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "threshold" in captured.err and captured.out == ""


def test_plain_text_output_and_errors_on_stderr(capsys, trained_model, inputs):
    square, garbage, _ = inputs
    code = main([square, garbage, "--model-dir", str(trained_model.directory)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith(f"{square}: P(fractured) = ") and "->" in captured.out
    assert garbage not in captured.out
    assert captured.err.startswith(f"{garbage}: error: expected an image file")


def test_heatmap_dir_gets_one_overlay_per_readable_image(capsys, tmp_path, trained_model, inputs):
    square, garbage, wide = inputs
    out = tmp_path / "heatmaps"
    code = main([square, garbage, wide, "--heatmap-dir", str(out), "--json",
                 "--model-dir", str(trained_model.directory)])
    capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["square_gradcam.png", "wide_gradcam.png"]
    for name, (width, height) in (("square", Image.open(square).size), ("wide", (70, 30))):
        with Image.open(out / f"{name}_gradcam.png") as overlay:
            assert overlay.mode == "RGB" and overlay.size == (width, height)
            assert np.asarray(overlay).std() > 0


def test_missing_model_is_reported(capsys, tmp_path, trained_model, inputs):
    assert main([inputs[0], "--model-dir", str(tmp_path)]) == 2
    assert "no trained model" in capsys.readouterr().err
    shutil.copy(trained_model.directory / METADATA_FILENAME, tmp_path)  # metadata without the model
    assert main([inputs[0], "--model-dir", str(tmp_path)]) == 2
    assert "fracture_cnn.keras" in capsys.readouterr().err


def test_one_grad_cam_pass_per_batch_and_the_json_does_not_depend_on_overlays(capsys, tmp_path, trained_model,
                                                                              inputs, monkeypatch):
    from core.classifier import FractureClassifier
    from core.heatmaps import HeatmapExplainer

    square, _, wide = inputs
    argv = [square, wide, square, "--batch-size", "2", "--model-dir", str(trained_model.directory)]
    _, plain = run_json(capsys, argv)
    passes = []
    for owner, name in ((FractureClassifier, "_raw_and_summaries"), (HeatmapExplainer, "grad_cam_pass")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda self, images, *args, _original=original, _name=name, **kwargs:
                            passes.append((_name, len(images))) or _original(self, images, *args, **kwargs))
    _, explained = run_json(capsys, argv + ["--heatmap-dir", str(tmp_path / "maps")])
    # One pass gives verdicts and maps: two images, then the third with a blank row beside it.
    assert passes == [("grad_cam_pass", 2), ("grad_cam_pass", 2)]
    assert explained == plain and all("heatmap_peak" in result for result in plain)
    assert len(list((tmp_path / "maps").iterdir())) == 3


def test_heatmap_png_is_the_overlay_of_the_classify_result(capsys, tmp_path, trained_model, classifier, inputs):
    from core.overlay import overlay_on_original

    wide = inputs[2]
    assert main([wide, "--heatmap-dir", str(tmp_path), "--model-dir", str(trained_model.directory)]) == 0
    capsys.readouterr()
    result = classifier.classify(wide, heatmap="gradcam")
    expected = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config)
    written = np.asarray(Image.open(tmp_path / "wide_gradcam.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_heatmaps_of_same_named_files_do_not_overwrite(capsys, tmp_path, trained_model, inputs):
    square = inputs[0]
    other = tmp_path / "elsewhere" / "square.png"
    other.parent.mkdir()
    shutil.copy(square, other)
    out = tmp_path / "heatmaps"
    assert main([square, str(other), "--heatmap-dir", str(out),
                 "--model-dir", str(trained_model.directory)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["square_2_gradcam.png", "square_gradcam.png"]


def test_a_colour_photo_is_marked_unreliable_with_the_shipped_model(capsys, tmp_path):
    from sklearn.datasets import load_sample_image
    from PIL import Image

    photo = tmp_path / "holiday.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(photo)
    code, results = run_json(capsys, [str(photo)])
    assert code == 0
    assert results[0]["looks_like_radiograph"] is False
    assert any("colour image" in reason for reason in results[0]["unreliable_because"])
    assert main([str(photo)]) == 0
    assert "does not look like a radiograph" in capsys.readouterr().out


# File names a terminal would act on: a forged verdict line, ANSI and OSC escapes (title, BEL),
# a C1 CSI, DEL, a bare CR, a Unicode line separator and a right-to-left override.
FORGED_LINE = "\nsquare.png: P(fractured) = 0.010 -> not_fractured (threshold 0.500)"
HOSTILE_NAMES = ("pos" + FORGED_LINE + ".png", "\x1b]0;title\x07.png", "\x1b[2K\x1b[31mred\x1b[0m.png",
                 "c1\x9b31m.png", "del\x7f.png", "cr\rnot_fractured.png", "sep\u2028line.png",
                 "rtl\u202egnp.png")
ESCAPED_NAMES = ("pos" + FORGED_LINE.replace("\n", "\\n") + ".png", "\\x1b]0;title\\x07.png",
                 "\\x1b[2K\\x1b[31mred\\x1b[0m.png", "c1\\x9b31m.png", "del\\x7f.png", "cr\\rnot_fractured.png",
                 "sep\\u2028line.png", "rtl\\u202egnp.png")


@pytest.fixture(scope="module")
def hostile_copies(tmp_path_factory, inputs):
    """The readable square image and the garbage file, each under every hostile name."""
    folder = tmp_path_factory.mktemp("hostile-names")
    square, garbage, _ = inputs
    readable = [str(shutil.copy(square, folder / name)) for name in HOSTILE_NAMES]
    unreadable = [str(shutil.copy(garbage, folder / f"bad-{name}")) for name in HOSTILE_NAMES]
    return readable, unreadable


def _only_printable(text: str) -> bool:
    """No character a terminal would act on, line ends apart."""
    import unicodedata

    return all(character == "\n" or (unicodedata.category(character) not in {"Cc", "Cs", "Zl", "Zp"}
                                      and character != "\u202e") for character in text)


def test_text_output_escapes_control_characters_in_file_names(capsys, trained_model, hostile_copies):
    readable, unreadable = hostile_copies
    code = main([*readable, *unreadable, "--model-dir", str(trained_model.directory)])
    captured = capsys.readouterr()
    assert code == 1
    out, err = captured.out.splitlines(), captured.err.splitlines()
    assert len(out) == len(readable) and len(err) == len(unreadable)  # one line per file, none forged
    assert _only_printable(captured.out) and _only_printable(captured.err)
    folder = str(Path(readable[0]).parent)
    for line, error_line, escaped in zip(out, err, ESCAPED_NAMES):
        assert line.startswith(f"{folder}/{escaped}: P(fractured) = ")
        assert error_line.startswith(f"{folder}/bad-{escaped}: error: expected an image file")


def test_json_output_keeps_hostile_file_names_exact(capsys, trained_model, hostile_copies):
    readable, unreadable = hostile_copies
    code, results = run_json(capsys, [*readable, *unreadable, "--model-dir", str(trained_model.directory)])
    assert code == 1
    assert [result["path"] for result in results] == [*readable, *unreadable]  # json.dumps escapes them
    assert all(has_result_keys(result) for result in results[:len(readable)])


def test_a_file_name_that_is_not_utf8_is_shown_as_its_bytes(capsys, tmp_path, trained_model, inputs):
    import os

    name = tmp_path / os.fsdecode(b"latin1-\xe9t\xe9.png")  # a lone surrogate per undecodable byte
    shutil.copy(inputs[0], name)
    assert main([str(name), "--model-dir", str(trained_model.directory)]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path}/latin1-\\xe9t\\xe9.png: P(fractured) = ")


def test_terminal_safe_leaves_ordinary_names_alone():
    from core.terminal_text import terminal_safe

    for name in ("a.png", "C:\\scans\\x.png", "röntgen 1 (copy).dcm", "x*ray*_[1]_$2$.jpg", "日本語.png"):
        assert terminal_safe(name) == name
    assert terminal_safe("a\nb\x1b\x00\t") == "a\\nb\\x1b\\x00\\t"


@pytest.mark.parametrize("where", ["file", "below a file"])
def test_heatmap_dir_that_cannot_be_a_folder_is_a_usage_error(capsys, tmp_path, trained_model, inputs, where):
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    folder = existing if where == "file" else existing / "maps"
    with pytest.raises(SystemExit) as exit_info:
        main([inputs[0], "--heatmap-dir", str(folder), "--model-dir", str(trained_model.directory)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert f"--heatmap-dir {folder}: " in captured.err and "not a directory" in captured.err.lower()
    assert existing.read_text() == "keep me"


def test_heatmap_of_an_input_named_at_the_length_limit_is_written(capsys, tmp_path, trained_model, inputs):
    long_name = tmp_path / ("x" * 251 + ".png")  # 255 bytes: "<stem>_gradcam.png" would be 258
    shutil.copy(inputs[0], long_name)
    out = tmp_path / "maps"
    assert main([str(long_name), str(long_name), "--heatmap-dir", str(out),
                 "--model-dir", str(trained_model.directory)]) == 0
    capsys.readouterr()
    names = sorted(path.name for path in out.iterdir())
    assert len(names) == 2 and all(len(name.encode()) <= 255 and name.endswith("_gradcam.png") for name in names)


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--workers", "-1")])
def test_bad_batch_size_or_workers_is_a_usage_error(capsys, trained_model, inputs, option, value):
    with pytest.raises(SystemExit) as exit_info:
        main([inputs[0], option, value, "--model-dir", str(trained_model.directory)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert f"{option} must be" in captured.err and captured.out == ""


def run_with_overlays(capsys, argv, heatmap_dir: Path) -> tuple[int, str, dict[str, bytes]]:
    """Exit status, stdout and every overlay PNG's bytes by name."""
    code = main(argv + ["--heatmap-dir", str(heatmap_dir)])
    out = capsys.readouterr().out
    return code, out, {path.name: path.read_bytes() for path in sorted(heatmap_dir.iterdir())}


@pytest.mark.parametrize("output", ["--json", "text"])
def test_batch_size_and_workers_change_neither_stdout_nor_overlay_bytes(capsys, tmp_path, trained_model, inputs,
                                                                        synth, output):
    shapes = [(40, 60), (64, 30), (48, 48), (25, 90), (70, 52)]
    extra = [str(synth.write_png(tmp_path / f"extra{index}.png", synth.xray(index % 2 == 0, seed=20 + index,
                                                                             shape=shape)))
             for index, shape in enumerate(shapes)]
    argv = [*inputs, *extra, "--model-dir", str(trained_model.directory)] + (["--json"] if output == "--json" else [])
    one_at_a_time = run_with_overlays(capsys, argv + ["--batch-size", "1", "--workers", "0"], tmp_path / "one")
    assert one_at_a_time[0] == 1 and len(one_at_a_time[2]) == len(inputs) - 1 + len(extra)  # the garbage file
    for name, options in (("default", []), ("threes", ["--batch-size", "3", "--workers", "1"])):
        assert run_with_overlays(capsys, argv + options, tmp_path / name) == one_at_a_time, name


def test_an_unreadable_file_in_a_batch_leaves_the_other_answers_as_they_are_alone(capsys, trained_model, inputs):
    square, garbage, wide = inputs
    model = ["--model-dir", str(trained_model.directory)]
    _, together = run_json(capsys, [square, garbage, wide, "--batch-size", "3", *model])
    alone = [run_json(capsys, [path, *model])[1][0] for path in (square, wide)]
    assert [together[0], together[2]] == alone and set(together[1]) == {"path", "error"}


def fracatlas_sample(count: int, large: int) -> list[str]:
    """``count`` FracAtlas test and val radiographs in the data set's order, ``large`` of them scans
    downscaled to 1,280 px (the rest mostly 373 x 454, both orientations)."""
    import csv

    from training.config import DEFAULT_DATA_DIR

    with open(DEFAULT_DATA_DIR / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] in ("test", "val")]
    chosen = ([row for row in rows if row["resized"] == "1"][:large]
              + [row for row in rows if row["resized"] == "0"][: count - large])
    return [str(DEFAULT_DATA_DIR / row["path"]) for row in chosen]


def _needs_fracatlas_and_the_shipped_model():
    from core.config import MODELS_DIR
    from training.config import DEFAULT_DATA_DIR

    if not (DEFAULT_DATA_DIR / "labels.csv").is_file():
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs real radiographs")
    if not (MODELS_DIR / METADATA_FILENAME).is_file():
        pytest.skip(f"no shipped model in {MODELS_DIR}")


def test_on_fracatlas_one_at_a_time_and_the_default_batch_give_the_same_stdout_and_pngs(capsys, tmp_path):
    _needs_fracatlas_and_the_shipped_model()
    images = fracatlas_sample(20, large=2)
    one_at_a_time = run_with_overlays(capsys, [*images, "--json", "--batch-size", "1", "--workers", "0"],
                                      tmp_path / "one")
    batched = run_with_overlays(capsys, [*images, "--json"], tmp_path / "batched")
    assert batched == one_at_a_time
    assert batched[0] == 0 and len(batched[1].splitlines()) == len(batched[2]) == len(images)


def test_a_folder_gives_its_image_files_recursively_sorted(capsys, tmp_path, trained_model, inputs):
    from core.batch_files import expand_inputs

    square = Path(inputs[0]).read_bytes()  # the reader goes by the bytes, never by the name
    root = tmp_path / "scans"
    for name in ("b.png", "a/2.jpg", "a/1.PNG", "IM0001", "1.2.840.10008.5", "a/deeper/x.dcm",
                 ".hidden.png", ".cache/y.png", "DICOMDIR", "notes.txt", "a/report.pdf"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(square)
    expected = [str(root / name) for name in ("1.2.840.10008.5", "IM0001", "a/1.PNG", "a/2.jpg", "a/deeper/x.dcm",
                                              "b.png")]
    assert [item.path for item in expand_inputs([str(root)])] == expected
    code, results = run_json(capsys, [inputs[2], str(root), "--model-dir", str(trained_model.directory)])
    assert code == 0 and [result["path"] for result in results] == [inputs[2], *expected]


def test_a_folder_without_images_is_an_error_line_and_the_run_goes_on(capsys, tmp_path, trained_model, inputs):
    empty = tmp_path / "empty"
    (empty / ".thumbnails").mkdir(parents=True)
    (empty / ".thumbnails" / "a.png").write_bytes(Path(inputs[0]).read_bytes())  # hidden: not counted
    (empty / "notes.txt").write_text("no images here")
    model = ["--model-dir", str(trained_model.directory)]
    code, results = run_json(capsys, [str(empty), inputs[0], *model])
    assert code == 1 and [result["path"] for result in results] == [str(empty), inputs[0]]
    assert set(results[0]) == {"path", "error"} and results[0]["error"].startswith("no image files in this folder")
    assert main([str(empty), *model]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"{empty}: error: no image files in this folder")
    assert "Traceback" not in captured.err


def test_symbolic_link_loops_in_a_folder_are_listed_once(tmp_path, inputs):
    from core.batch_files import expand_inputs

    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    for name in ("x.png", "sub/y.png"):
        shutil.copy(inputs[0], root / name)
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)  # back up the tree
    (root / "again").symlink_to(root / "sub", target_is_directory=True)  # a second way into sub
    assert [item.path for item in expand_inputs([str(root)])] == [str(root / "again" / "y.png"), str(root / "x.png")]


class FakeTerminal:
    """A text stream that says it is a terminal, keeping what is written to it."""

    def __init__(self):
        self.written = []

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def getvalue(self) -> str:
        return "".join(self.written)


def test_progress_is_drawn_on_stderr_when_it_is_a_terminal_and_never_in_the_json(capsys, monkeypatch, trained_model,
                                                                                 inputs):
    argv = [*inputs, "--json", "--model-dir", str(trained_model.directory)]
    terminal = FakeTerminal()
    with monkeypatch.context() as patch:
        patch.setattr("sys.stderr", terminal)
        code = main(argv)
    out = capsys.readouterr().out
    assert code == 1 and "scored 3/3 files (100%)" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")  # erased at the end: the prompt comes back on a clean line
    assert [json.loads(line)["path"] for line in out.splitlines()] == list(inputs)


def test_no_progress_when_stderr_is_not_a_terminal(capsys, trained_model, inputs):
    main([*inputs, "--model-dir", str(trained_model.directory)])
    captured = capsys.readouterr()
    assert "scored" not in captured.err and "\r" not in captured.err + captured.out
    assert captured.err.startswith(f"{inputs[1]}: error: ")  # the garbage file's line, and only that
    assert len(captured.err.splitlines()) == 1


# --- a model with a fracture map of its own (tests/box_model_fixture.py) ---------------------------

def test_json_heatmap_peak_of_a_box_model_is_where_its_fracture_map_peaks(capsys, tmp_path, box_model_dir,
                                                                         box_classifier, synth):
    from core.preprocessing import content_box

    shapes = {"wide": (40, 70), "tall": (90, 50), "square": (60, 60)}
    paths = {name: synth.write_png(tmp_path / f"{name}.png", synth.xray(True, seed=20 + index, shape=shape))
             for index, (name, shape) in enumerate(shapes.items())}
    code, results = run_json(capsys, [*map(str, paths.values()), "--model-dir", str(box_model_dir)])
    assert code == 0
    config = box_classifier.preprocess_config
    for (name, path), result in zip(paths.items(), results):
        fracture_map = box_classifier.explainer.fracture_map(box_classifier.prepare(str(path)).model_input[None])[0]
        box = content_box(shapes[name], config)
        top, left, height, width = box.top, box.left, box.height, box.width
        row, column = np.unravel_index(np.argmax(fracture_map[top : top + height, left : left + width]),
                                       (height, width))
        assert result["heatmap_peak"] == [round((column + 0.5) / width, 4), round((row + 0.5) / height, 4)], name


def test_a_box_models_fracture_map_comes_from_the_verdicts_own_pass(capsys, tmp_path, box_model_dir, inputs,
                                                                    monkeypatch):
    from core.classifier import FractureClassifier
    from core.heatmaps import HeatmapExplainer

    square, _, wide = inputs
    passes = []
    for owner, name in ((FractureClassifier, "_forward_rows"), (HeatmapExplainer, "grad_cam_pass"),
                        (HeatmapExplainer, "fracture_map")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda self, images, *args, _original=original, _name=name, **kwargs:
                            passes.append((_name, len(images))) or _original(self, images, *args, **kwargs))
    argv = [square, wide, square, "--batch-size", "2", "--model-dir", str(box_model_dir)]
    assert main(argv + ["--heatmap-dir", str(tmp_path / "maps")]) == 0
    capsys.readouterr()
    # Two images, then the third with a blank row beside it; no Grad-CAM, no second pass for the map.
    assert passes == [("_forward_rows", 2), ("_forward_rows", 2)]


def test_heatmap_dir_names_a_box_models_overlays_after_its_fracture_map(capsys, tmp_path, box_model_dir,
                                                                        box_classifier, inputs):
    from core.overlay import overlay_on_original

    square, _, wide = inputs
    out = tmp_path / "maps"
    assert main([square, wide, square, "--heatmap-dir", str(out), "--model-dir", str(box_model_dir)]) == 0
    capsys.readouterr()
    assert sorted(path.name for path in out.iterdir()) == ["square_2_fracturemap.png", "square_fracturemap.png",
                                                          "wide_fracturemap.png"]
    result = box_classifier.classify(wide, heatmap="fracturemap")
    expected = overlay_on_original(result.image, result.heatmap, box_classifier.preprocess_config)
    written = np.asarray(Image.open(out / "wide_fracturemap.png"))
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
