"""training.study's table reads each run's metadata and history."""

import json

from training import study


def test_table_reports_best_and_late_val_auroc(tmp_path, monkeypatch):
    run = tmp_path / "residual-128"
    run.mkdir()
    (run / "metadata.json").write_text(json.dumps({
        "input_size": 128, "inference_ms": 2.5,
        "training": {"best_val_auroc": 0.9, "best_epoch": 3, "epochs_run": 6, "total_seconds": 120}}))
    rows = [f"{epoch},0.5,{auroc},1.0" for epoch, auroc in enumerate([0.5, 0.6, 0.9, 0.8, 0.8, 0.8], 1)]
    (run / "history.csv").write_text("epoch,loss,val_auroc,seconds\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(study, "RUNS_DIR", tmp_path)

    table = study.table(["residual-128", "never-ran"])

    lines = table.splitlines()
    assert len(lines) == 3  # header, rule, one run; a run without metadata is left out
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells[0] == "residual-128"
    assert cells[2:] == ["128 px", "0.900", "0.780", "3/6", "2.0", "2.5"]
