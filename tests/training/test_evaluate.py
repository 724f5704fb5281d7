"""Tests for the evaluation CLI (training.evaluate) with the tiny model and its tiny data set."""

import contextlib
import csv
import io
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training import evaluate
from core.config import METRICS_FILENAME, PROBABILITIES_FILENAME
from training.data import load_arrays, load_index, split_hash
from core.thresholds import PRESET_NAMES


@pytest.fixture(scope="module")
def report(trained_model, classifier):
    """Runs the CLI once; returns (exit code, metrics.json, probabilities.csv rows, stderr)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        code = evaluate.main(["--data-dir", str(trained_model.data_dir),
                              "--model-dir", str(trained_model.directory), "--n-bootstrap", "200"])
    metrics = json.loads((trained_model.directory / METRICS_FILENAME).read_text())
    with open(trained_model.directory / PROBABILITIES_FILENAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return code, metrics, rows, errors.getvalue()


def test_exit_code_and_no_split_warning(report):
    code, _, _, stderr = report
    assert code == 0
    assert "warning" not in stderr  # same data set the model was trained on


def test_metrics_report(report, trained_model, classifier, synth):
    _, metrics, _, _ = report
    n = 2 * synth.folder_counts["val"]
    assert set(metrics["splits"]) == {"val", "test"}
    assert metrics["split_hash"] == split_hash(load_index(trained_model.data_dir))
    assert metrics["thresholds"] == dict(classifier.thresholds.values)
    assert metrics["temperature"] == classifier.temperature
    for split in ("val", "test"):
        report_ = metrics["splits"][split]
        assert report_["n"] == 2 * synth.folder_counts[split] and report_["n_positive"] == n // 2
        auroc = report_["auroc"]
        assert auroc["n_bootstrap"] == 200
        assert 0.0 <= auroc["ci_low"] <= auroc["auroc"] <= auroc["ci_high"] <= 1.0
        points = report_["operating_points"]
        assert set(points) == set(PRESET_NAMES)
        for name, point in points.items():
            assert point["threshold"] == classifier.thresholds[name]
        assert set(report_["subgroups"]) == {"region=unknown"}  # folder layout: no metadata
        assert report_["subgroups"]["region=unknown"]["n"] == report_["n"]


def test_probabilities_csv_matches_the_classifier(report, trained_model, classifier):
    _, _, rows, _ = report
    samples = load_index(trained_model.data_dir)
    held_out = [s for s in samples if s.split in ("val", "test")]
    assert len(rows) == len(held_out)
    assert [(row["image_id"], row["split"], int(row["label"])) for row in rows] == [
        (s.image_id, s.split, s.label) for s in held_out]
    images, _ = load_arrays(held_out, classifier.preprocess_config)
    expected = classifier.predict_batch(images)
    written = np.array([float(row["probability_fractured"]) for row in rows])
    np.testing.assert_allclose(written, expected, atol=6e-7)


def test_auroc_agrees_with_sklearn_on_the_csv(report):
    _, metrics, rows, _ = report
    for split in ("val", "test"):
        labels = np.array([int(row["label"]) for row in rows if row["split"] == split])
        written = np.array([float(row["probability_fractured"]) for row in rows if row["split"] == split])
        # The CSV has 6 decimals; only a fractured/not-fractured pair that rounding made equal
        # could move the AUROC (by half a pair each).
        positives, negatives = written[labels == 1], written[labels == 0]
        tied_pairs = int((positives[:, None] == negatives[None, :]).sum())
        tolerance = 0.5 * tied_pairs / (len(positives) * len(negatives)) + 1e-12
        assert metrics["splits"][split]["auroc"]["auroc"] == pytest.approx(
            roc_auc_score(labels, written), abs=tolerance)


def test_subgroups_by_region_and_hardware(tmp_path, classifier, synth):
    data_dir = synth.csv_dataset(tmp_path, {"train": 1, "val": 4, "test": 6})
    samples = load_index(data_dir)
    metrics, rows = evaluate.evaluate(classifier, samples, n_bootstrap=50)
    test = metrics["splits"]["test"]
    assert set(test["subgroups"]) == {"region=hand", "region=leg", "hardware=with", "hardware=without"}
    for key, (column, value) in {"region=hand": ("region", "hand"), "region=leg": ("region", "leg"),
                                 "hardware=with": ("hardware", 1), "hardware=without": ("hardware", 0)}.items():
        members = [s for s in samples if s.split == "test" and getattr(s, column) == value]
        assert test["subgroups"][key]["n"] == len(members) == 6
        assert test["subgroups"][key]["n_positive"] == sum(s.label for s in members)
    assert len(rows) == 2 * (4 + 6)
    assert {row["region"] for row in rows} == {"hand", "leg"} and {row["hardware"] for row in rows} == {0, 1}


def test_no_write_leaves_the_model_folder_alone(tmp_path, trained_model, report, capsys):
    before = {p.name: p.read_bytes() for p in trained_model.directory.iterdir()}
    code = evaluate.main(["--data-dir", str(trained_model.data_dir), "--model-dir",
                          str(trained_model.directory), "--n-bootstrap", "50", "--no-write"])
    assert code == 0
    assert {p.name: p.read_bytes() for p in trained_model.directory.iterdir()} == before
    out = capsys.readouterr().out
    assert out.startswith("val: n=16 (8 fractured)  AUROC ") and "\ntest: n=16" in out


def test_missing_data_directory(tmp_path, trained_model, capsys):
    code = evaluate.main(["--data-dir", str(tmp_path / "nowhere"), "--model-dir", str(trained_model.directory)])
    assert code == 2
    assert "data directory not found" in capsys.readouterr().err


def test_report_renders_the_written_figures(report, trained_model, capsys):
    from training import report as report_cli

    _, metrics, _, _ = report
    assert report_cli.main(["--model-dir", str(trained_model.directory)]) == 0
    output = capsys.readouterr().out
    test_auroc = metrics["splits"]["test"]["auroc"]["auroc"]
    assert f"| test | {metrics['splits']['test']['n']} " in output
    assert f"{test_auroc:.3f}" in output
    for name in PRESET_NAMES:
        point = metrics["splits"]["test"]["operating_points"][name]
        assert f"| {name} | {point['threshold']:.3f} |" in output
    assert "| region=unknown | 16 (8) |" in output  # the folder layout has no region or hardware


def test_multi_region_images_are_grouped_as_mixed(tmp_path, classifier, synth):
    import dataclasses

    data_dir = synth.csv_dataset(tmp_path, {"train": 1, "val": 4, "test": 6})
    samples = [dataclasses.replace(s, region="hand+hip+mixed") if s.region == "leg" else s
               for s in load_index(data_dir)]
    metrics, _ = evaluate.evaluate(classifier, samples, n_bootstrap=50)
    regions = {key for key in metrics["splits"]["test"]["subgroups"] if key.startswith("region=")}
    assert regions == {"region=hand", "region=mixed"}
    assert metrics["splits"]["test"]["subgroups"]["region=mixed"]["n"] == 6


def test_write_report_keeps_the_localisation_figures_of_the_same_model_only(tmp_path):
    localisation = {"method": "gradcam", "model_version": "v1", "n_images": 3, "peak_inside_box": 1}
    (tmp_path / "metrics.json").write_text(json.dumps({"model_version": "v1", "localisation": localisation}))
    rows = [{"image_id": "a", "probability": 0.5}]
    evaluate.write_report(tmp_path, {"model_version": "v1", "splits": {}}, rows)
    assert json.loads((tmp_path / "metrics.json").read_text())["localisation"] == {"methods": {"gradcam": localisation}}
    evaluate.write_report(tmp_path, {"model_version": "v2", "splits": {}}, rows)
    assert "localisation" not in json.loads((tmp_path / "metrics.json").read_text())  # another model's
