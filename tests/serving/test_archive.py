"""`python -m serving.archive`: an actor pool on a local Ray (2 CPUs) gives exactly the CLI's answers.

The archive is run on a temporary folder tree of 100 FracAtlas test radiographs (half fractured,
half not; linked, not copied) and a corrupt JPEG; ``python -m core.predict --json --heatmap-dir``
is run on the same folder, and every field of every row, their order, and every overlay PNG must
be the CLI's. Those tests need ``../shared`` and the shipped model, and are skipped, saying which
is missing, without them. The list file, the usage errors and the isolation of a file that breaks
scoring need no data.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from core.config import MODELS_DIR, PROJECT_DIR
from core.predict import main as predict_main
from serving import _archive_worker
from serving.archive import ROW_SCHEMA, column_text, list_inputs, main
from tests.box_model_fixture import box_model_dir  # noqa: F401  (fixture)
from training.config import DEFAULT_DATA_DIR

IMAGES_PER_CLASS = 50
CORRUPT_NAME = "IMG0000500_corrupt.jpg"  # sorts among the fractured images, inside a batch of them
NOT_AN_IMAGE_ERROR = "expected an image file"

needs_shipped_model = pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(),
                                         reason=f"no shipped model in {MODELS_DIR}")
needs_fracatlas = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "labels.csv").is_file(),
                                     reason=f"FracAtlas not found at {DEFAULT_DATA_DIR}; this check needs real test images")


def _fracatlas_test_paths(per_class: int) -> list[Path]:
    with open(DEFAULT_DATA_DIR / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    chosen = ([row for row in rows if row["label"] == "fractured"][:per_class]
              + [row for row in rows if row["label"] == "not_fractured"][:per_class])
    return [DEFAULT_DATA_DIR / row["path"] for row in chosen]


@pytest.fixture(scope="module")
def archive_folder(tmp_path_factory) -> Path:
    """``fractured/`` and ``not_fractured/`` links to FracAtlas test images (no image is copied),
    and a corrupt JPEG sorted among them."""
    folder = tmp_path_factory.mktemp("archive")
    for image in _fracatlas_test_paths(IMAGES_PER_CLASS):
        (folder / image.parent.name).mkdir(exist_ok=True)
        (folder / image.parent.name / image.name).symlink_to(image)
    (folder / "fractured" / CORRUPT_NAME).write_bytes(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" * 40)
    return folder


@pytest.fixture(scope="module")
def cli(archive_folder, tmp_path_factory):
    """``python -m core.predict FOLDER --json --heatmap-dir``: its records in its order, and its
    overlay folder."""
    overlays = tmp_path_factory.mktemp("cli-overlays")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = predict_main([str(archive_folder), "--threshold", "screening", "--json", "--heatmap-dir", str(overlays)])
    assert code == 1  # the corrupt file
    return [json.loads(line) for line in out.getvalue().splitlines()], overlays


@pytest.fixture(scope="module")
def parquet_run(local_ray, archive_folder, tmp_path_factory):
    """The archive on the same folder: Parquet rows and overlays, 2 workers, batches small enough
    that both actors get several."""
    out = tmp_path_factory.mktemp("archive-out")
    code = main([str(archive_folder), "--output", str(out / "scores.parquet"), "--threshold", "screening",
                 "--overlay-dir", str(out / "overlays"), "--workers", "2", "--batch-size", "16"])
    return code, pq.read_table(out / "scores.parquet"), out / "overlays"


def expected_row(record: dict) -> dict:
    """The archive's row for one CLI ``--json`` record: the same values, the peak in two columns."""
    row = dict.fromkeys(ROW_SCHEMA.names)
    if "error" in record:
        return {**row, "path": record["path"], "error": record["error"]}
    x, y = record["heatmap_peak"]
    return {**row, **{key: record[key] for key in ("path", "probability_fractured", "decision", "threshold",
                                                   "looks_like_radiograph", "unlike_training_data")},
            "heatmap_peak_x": x, "heatmap_peak_y": y}


def only_path_and_error(row: dict) -> bool:
    return all(row[column] is None for column in ROW_SCHEMA.names if column not in ("path", "error"))


@needs_shipped_model
@needs_fracatlas
def test_every_row_is_exactly_the_cli_answer_in_the_cli_order(parquet_run, cli):
    _, table, _ = parquet_run
    records, _ = cli
    assert table.schema == ROW_SCHEMA
    assert len(records) == 2 * IMAGES_PER_CLASS + 1
    assert table.to_pylist() == [expected_row(record) for record in records]
    paths = table["path"].to_pylist()
    assert paths == sorted(paths)  # in this tree, the CLI's folder-by-folder order is plain sorting
    assert set(table["decision"].to_pylist()) == {"fractured", "not_fractured", None}  # not one-sided


@needs_shipped_model
@needs_fracatlas
def test_a_corrupt_file_becomes_an_error_row_and_the_job_goes_on(parquet_run, archive_folder):
    code, table, _ = parquet_run
    assert code == 1  # as the CLI: some file could not be read
    errors = [row for row in table.to_pylist() if row["error"] is not None]
    assert [row["path"] for row in errors] == [str(archive_folder / "fractured" / CORRUPT_NAME)]
    assert errors[0]["error"].startswith(NOT_AN_IMAGE_ERROR)
    assert "looks like a JPEG cut short or damaged" in errors[0]["error"]
    assert only_path_and_error(errors[0])
    readable = [row for row in table.to_pylist() if row["error"] is None]
    assert len(readable) == 2 * IMAGES_PER_CLASS
    assert all(0.0 <= row["probability_fractured"] <= 1.0 for row in readable)


@needs_shipped_model
@needs_fracatlas
def test_overlay_dir_holds_the_cli_overlays_one_png_per_readable_image(parquet_run, cli):
    _, _, overlays = parquet_run
    _, cli_overlays = cli
    written = sorted(path.name for path in overlays.iterdir())
    assert len(written) == 2 * IMAGES_PER_CLASS  # none for the corrupt file, no staging folder left behind
    assert written == sorted(path.name for path in cli_overlays.iterdir())
    for name in written:
        assert (overlays / name).read_bytes() == (cli_overlays / name).read_bytes(), name


@needs_shipped_model
@needs_fracatlas
def test_csv_from_a_list_file_on_a_joined_cluster_round_trips_with_an_error_row_per_bad_line(local_ray, cli, tmp_path):
    """``python -m serving.archive --address`` joins the test session's Ray (a cluster to it) and
    leaves it running."""
    records, _ = cli
    readable = [record for record in records if "error" not in record]
    images = [readable[0]["path"], readable[len(readable) // 2]["path"], readable[-1]["path"]]
    gone = str(tmp_path / "moved-after-listing.jpg")  # listed, but absent when a worker reads it
    text = tmp_path / "notes.txt"
    text.write_text("reading list: not an image\n")
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    list_file = tmp_path / "archive.txt"
    list_file.write_text("\n".join([*images, gone, str(text), str(empty)]) + "\n\n")
    output = tmp_path / "scores.csv"
    run = subprocess.run([sys.executable, "-m", "serving.archive", "--list", str(list_file), "--output", str(output),
                          "--threshold", "screening", "--workers", "1",
                          "--address", local_ray.get_runtime_context().gcs_address],
                         cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]  # some lines could not be read; the job went on
    assert "scored 6 files (3 unreadable)" in run.stderr
    assert local_ray.is_initialized() and local_ray.cluster_resources()["CPU"] == 2  # left as it was
    table = pcsv.read_csv(output, convert_options=pcsv.ConvertOptions(column_types=ROW_SCHEMA,
                                                                      strings_can_be_null=True))
    assert table.column_names == ROW_SCHEMA.names
    rows = {row["path"]: row for row in table.to_pylist()}
    assert list(rows) == sorted([*images, gone, str(text), str(empty)])
    by_path = {record["path"]: record for record in records}
    for image in images:
        assert rows[image] == expected_row(by_path[image])
    assert "which does not exist" in rows[gone]["error"]
    assert "'notes.txt' that start with 'reading list" in rows[str(text)]["error"]
    assert rows[str(empty)]["error"].startswith("no image files in this folder")
    assert all(only_path_and_error(rows[path]) for path in (gone, str(text), str(empty)))


def test_a_list_file_names_one_path_per_line_as_the_cli_takes_arguments(tmp_path):
    (tmp_path / "scans" / "deeper").mkdir(parents=True)
    for relative in ("scans/b.png", "scans/deeper/c.dcm", "scans/notes.txt"):
        (tmp_path / relative).write_bytes(b"x")
    list_file = tmp_path / "list.txt"
    list_file.write_bytes(b"a.png\r\n" + os.fsencode(tmp_path / "scans") + b"\n\n   \nsub/\xff.png\n")
    assert [item.path for item in list_inputs([], [list_file])] == [
        "a.png", str(tmp_path / "scans" / "b.png"), str(tmp_path / "scans" / "deeper" / "c.dcm"),
        os.fsdecode(b"sub/\xff.png")]


def test_a_path_that_is_not_utf8_is_written_with_its_bytes_escaped():
    assert column_text(os.fsdecode(b"scans/\xff\xfe.jpg")) == "scans/\\xff\\xfe.jpg"
    assert column_text("scans/été.jpg") == "scans/été.jpg"


@pytest.mark.parametrize("arguments, message", [
    (["--output", "rows.xlsx"], "unknown format '.xlsx'; valid: .parquet, .csv"),
    (["--output", "rows.csv", "--workers", "0"], "--workers must be at least 1"),
    (["--output", "rows.csv", "--threshold", "lenient"], "unknown threshold 'lenient'"),
    (["--output", "rows.csv"], "no files to score"),
])
@needs_shipped_model
def test_bad_usage_exits_2_with_a_precise_message(capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@needs_shipped_model
def test_an_overlay_dir_that_is_a_file_is_bad_usage_naming_the_option(capsys, tmp_path):
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    with pytest.raises(SystemExit) as exit_:
        main([str(existing), "--output", str(tmp_path / "rows.csv"), "--overlay-dir", str(existing)])
    assert exit_.value.code == 2
    assert f"--overlay-dir {existing}: exists and is not a directory" in capsys.readouterr().err
    assert existing.read_text() == "keep me" and not (tmp_path / "rows.csv").exists()


@needs_shipped_model
def test_a_file_that_breaks_scoring_gets_an_error_row_and_the_rest_of_its_batch_is_scored(monkeypatch, tmp_path, synth):
    paths = [synth.write_png(tmp_path / f"{name}.png", synth.xray(fractured, seed))
             for name, fractured, seed in (("first", True, 1), ("breaks", False, 2), ("last", False, 3))]
    real_score_files = _archive_worker.score_files

    def failing_on_breaks(classifier, sources, **options):
        # Fault injection: scoring itself raises (not a read error) when it reaches one file,
        # after answering the files before it.
        for file in real_score_files(classifier, sources, **options):
            if Path(file.path).stem == "breaks":
                raise FloatingPointError("injected failure")
            yield file

    worker = _archive_worker.ArchiveWorker(str(MODELS_DIR), threshold=0.5)
    monkeypatch.setattr(_archive_worker, "score_files", failing_on_breaks)
    table = worker({"index": np.arange(3), "location": np.array([os.fsencode(path) for path in paths], dtype=object)})
    monkeypatch.undo()
    rows = table.to_pylist()
    assert [row["index"] for row in rows] == [0, 1, 2]
    assert rows[1]["error"] == "could not be scored: FloatingPointError: injected failure"
    assert rows[1]["probability_fractured"] is None
    for row, path in ((rows[0], paths[0]), (rows[2], paths[2])):
        [alone] = real_score_files(worker.classifier, [path])
        assert row["error"] is None
        assert row["probability_fractured"] == alone.record(0.5)["probability_fractured"]
        assert [row["heatmap_peak_x"], row["heatmap_peak_y"]] == alone.record(0.5)["heatmap_peak"]


def test_a_box_models_overlays_are_the_clis_named_after_its_fracture_map(local_ray, box_model_dir, synth,
                                                                         tmp_path):
    for folder, seed in (("a", 1), ("b", 2)):  # the same file name twice: the CLI numbers the second
        synth.write_png(tmp_path / "images" / folder / "knee.png", synth.xray(True, seed=seed, shape=(50, 70)))
    cli_overlays, archive_overlays = tmp_path / "cli", tmp_path / "archive"
    with contextlib.redirect_stdout(io.StringIO()):
        assert predict_main([str(tmp_path / "images"), "--heatmap-dir", str(cli_overlays),
                             "--model-dir", str(box_model_dir)]) == 0
    assert main([str(tmp_path / "images"), "--output", str(tmp_path / "scores.parquet"), "--overlay-dir",
                 str(archive_overlays), "--workers", "1", "--model-dir", str(box_model_dir)]) == 0
    names = sorted(path.name for path in archive_overlays.iterdir())
    assert names == sorted(path.name for path in cli_overlays.iterdir()) == ["knee_2_fracturemap.png",
                                                                            "knee_fracturemap.png"]
    for name in names:
        assert (archive_overlays / name).read_bytes() == (cli_overlays / name).read_bytes(), name
    assert pq.read_table(tmp_path / "scores.parquet").schema == ROW_SCHEMA  # the method names files, not a column
