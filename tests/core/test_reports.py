"""core.reports: the per-image JSON report and the batch CSV."""

import csv
import io

import pytest

from core.reports import BatchRow, results_csv, verdict_report
from core.radiograph_check import RadiographCheck
from core.triage import TriageBands

BANDS = TriageBands(0.1, 0.5)  # doubt from 0.1, fracture from 0.5


def test_verdict_report_follows_the_threshold_rule():
    report = verdict_report("a.png", 0.3, 0.3, method="gradcam", model_version="v1")
    assert report == {"file_name": "a.png", "probability_fractured": 0.3, "threshold": 0.3,
                      "decision": "fractured", "verdict": "Fracture suspected",
                      "method": "gradcam", "model_version": "v1"}
    assert verdict_report("a.png", 0.29, 0.3, method="gradcam", model_version="v1")["verdict"] == \
        "No fracture detected"


def test_results_csv_quotes_names_and_leaves_unreadable_blank():
    text = results_csv([BatchRow("a, b.png", 0.25), BatchRow("x.png", error="bad")], 0.2, BANDS)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["file", "probability_fractured", "verdict", "band", "threshold", "looks_like_radiograph",
                     "unlike_training_data"],
                    ["a, b.png", "0.250000", "Fracture suspected", "Doubt", "0.200000", "", ""],
                    ["x.png", "", "unreadable: bad", "", "0.200000", "", ""]]


def test_results_csv_gives_each_row_its_band_from_the_edges_not_from_the_threshold():
    probabilities = (0.0, 0.0999, 0.1, 0.4999, 0.5, 1.0)
    text = results_csv([BatchRow(f"{p}.png", p) for p in probabilities], 0.3, BANDS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["band"] for row in rows] == ["No fracture", "No fracture", "Doubt", "Doubt", "Fracture", "Fracture"]
    # The verdict follows the threshold (0.3), so a doubt-band image can be either verdict.
    assert [row["verdict"] for row in rows][2:4] == ["No fracture detected", "Fracture suspected"]


def test_results_csv_gives_both_tiers_of_the_radiograph_check():
    like, colour, unlike = RadiographCheck(0.0, 0.1, 0.2), RadiographCheck(40.0, 0.1, 0.2), RadiographCheck(0.0, 0.5, 0.2)
    rows = list(csv.reader(io.StringIO(results_csv(
        [BatchRow(f"{n}.png", 0.5, radiograph_check=c) for n, c in enumerate((like, colour, unlike))], 0.2, BANDS))))
    assert [row[5:] for row in rows[1:]] == [["yes", "no"], ["no", "no"], ["yes", "yes"]]


def test_results_csv_decides_from_the_probability_at_the_exact_threshold():
    text = results_csv([BatchRow("a.png", 0.0897), BatchRow("b.png", 0.0895)], 0.08959388132952051, BANDS)
    rows = list(csv.reader(io.StringIO(text)))
    assert [row[2] for row in rows[1:]] == ["Fracture suspected", "No fracture detected"]


FORMULA_NAMES = ("=HYPERLINK(\"http://x.example\",\"open\").png", "+1+2.png", "-2+3.png", "@SUM(A1).png",
                 "\t=1+2.png", "\r=1+2.png", " =1+2.png", "\"=1+2.png", "'=1+2.png", "\u00a0 =1.png",
                 "＝1+2.png", "=cmd|' /C calc'!A0")


@pytest.mark.parametrize("name", FORMULA_NAMES)
def test_results_csv_neutralises_a_file_name_a_spreadsheet_would_run(name):
    text = results_csv([BatchRow(name, 0.25), BatchRow(name, error="bad")], 0.2, BANDS)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3  # still one line per upload, whatever the name holds
    assert [row[0] for row in rows[1:]] == ["'" + name] * 2  # OWASP: a leading quote makes it text
    assert rows[1][1:] == ["0.250000", "Fracture suspected", "Doubt", "0.200000", "", ""]


@pytest.mark.parametrize("name", ["a.png", "x-ray.png", "IM0001.dcm", "a=b.png", "1+1.png", "'quoted'.png",
                                  "", "a, \"b\"\n.png", "ü-@.png"])
def test_results_csv_leaves_ordinary_names_as_they_are(name):
    rows = list(csv.reader(io.StringIO(results_csv([BatchRow(name, 0.25)], 0.2, BANDS))))
    assert rows[1][0] == name


def test_an_error_message_cell_starts_with_unreadable_so_is_never_a_formula():
    rows = list(csv.reader(io.StringIO(results_csv([BatchRow("x.png", error="=1+2")], 0.2, BANDS))))
    assert rows[1] == ["x.png", "", "unreadable: =1+2", "", "0.200000", "", ""]


@pytest.mark.parametrize("cell, safe", [("=1", "'=1"), ("-", "'-"), ("  @x", "'  @x"), ("0.250000", "0.250000"),
                                        ("unreadable: bad", "unreadable: bad"), ("", "")])
def test_spreadsheet_safe(cell, safe):
    from core.reports import spreadsheet_safe

    assert spreadsheet_safe(cell) == safe
