"""core.export: the per-image JSON report and the batch CSV."""

import csv
import io

from core.export import BatchRow, results_csv, verdict_report


def test_verdict_report_follows_the_threshold_rule():
    report = verdict_report("a.png", 0.3, 0.3, method="gradcam", model_version="v1")
    assert report == {"file_name": "a.png", "probability_fractured": 0.3, "threshold": 0.3,
                      "decision": "fractured", "verdict": "Fracture suspected",
                      "method": "gradcam", "model_version": "v1"}
    assert verdict_report("a.png", 0.29, 0.3, method="gradcam", model_version="v1")["verdict"] == \
        "No fracture detected"


def test_results_csv_quotes_names_and_leaves_unreadable_blank():
    text = results_csv([BatchRow("a, b.png", 0.25), BatchRow("x.png", error="bad")], 0.2)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["file", "probability_fractured", "verdict", "threshold"],
                    ["a, b.png", "0.250000", "Fracture suspected", "0.200000"],
                    ["x.png", "", "unreadable: bad", "0.200000"]]


def test_results_csv_decides_from_the_probability_at_the_exact_threshold():
    text = results_csv([BatchRow("a.png", 0.0897), BatchRow("b.png", 0.0895)], 0.08959388132952051)
    rows = list(csv.reader(io.StringIO(text)))
    assert [row[2] for row in rows[1:]] == ["Fracture suspected", "No fracture detected"]
