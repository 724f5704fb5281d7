"""What leaves the app and the CLI: the per-image JSON report and the batch CSV.

Neither holds pixel data or anything read from the file besides its name. (The PDF reports are
:mod:`core.pdf_report`.)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from core.radiograph_check import RadiographCheck
from core.thresholds import decide
from core.triage import BAND_TEXT, TriageBands

VERDICT_TEXT = {"fractured": "Fracture suspected", "not_fractured": "No fracture detected"}


def verdict_report(file_name: str, probability_fractured: float, threshold: float, *,
                   method: str, model_version: str, radiograph_check: RadiographCheck | None = None) -> dict:
    """The JSON report the app offers per image (no pixel data, no patient data)."""
    decision = decide(probability_fractured, threshold)
    report = {"file_name": file_name, "probability_fractured": round(float(probability_fractured), 6),
              "threshold": round(float(threshold), 6), "decision": decision,
              "verdict": VERDICT_TEXT[decision], "method": method, "model_version": model_version}
    if radiograph_check is not None:
        report.update(radiograph_fields(radiograph_check))
    return report


def radiograph_fields(check: RadiographCheck) -> dict:
    """Both tiers of the radiograph check, as the JSON of the CLI and the app's report carry them."""
    fields = {"looks_like_radiograph": check.looks_like_radiograph,
              "unlike_training_data": check.unlike_training_data}
    if check.reasons:
        fields["unreliable_because"] = list(check.reasons)
    return fields


@dataclass(frozen=True)
class BatchRow:
    """One upload of a batch: its name, and its probability or why it could not be read."""

    file_name: str
    probability_fractured: float | None = None
    error: str | None = None
    radiograph_check: RadiographCheck | None = None  # None for an unreadable file


# A spreadsheet (Excel, LibreOffice Calc, Google Sheets) reads a cell that starts with one of
# these as a formula: "=HYPERLINK(…)" in a file name would run when the CSV is opened. Tab, CR,
# LF and NUL are on OWASP's and ASVS's lists; the full-width forms are read as formulas by
# spreadsheets in East Asian locales.
_FORMULA_STARTS = frozenset("=+-@\t\r\n\0＝＋－＠")
# Import settings that trim spaces or strip quotes make ' =1+2' and '"=1+2' formulas too, so
# these are skipped before looking at the first character.
_SKIPPED_BEFORE_FORMULA = " \"'\u00a0\u3000"


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with a leading single quote when a spreadsheet would read it as a formula.

    OWASP's advice for CSV injection: the quote makes the spreadsheet show the cell as text, and
    cells that start with anything else are left exactly as they were.
    """
    if cell.lstrip(_SKIPPED_BEFORE_FORMULA)[:1] in _FORMULA_STARTS:
        return "'" + cell
    return cell


def results_csv(rows: list[BatchRow], threshold: float, bands: TriageBands) -> str:
    """CSV text with one line per row: file, P(fractured), verdict (or the error) at ``threshold``,
    its triage band among ``bands``, and both tiers of the radiograph check (band and tiers empty
    for an unreadable file).

    Every cell goes through :func:`spreadsheet_safe`: file names and error messages come from
    the uploader, and the CSV is made to be opened in a spreadsheet.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "probability_fractured", "verdict", "band", "threshold", "looks_like_radiograph",
                     "unlike_training_data"])
    for row in rows:
        if row.probability_fractured is None:
            probability, verdict, band = "", f"unreadable: {row.error}", ""
        else:
            probability = f"{row.probability_fractured:.6f}"
            verdict = VERDICT_TEXT[decide(row.probability_fractured, threshold)]
            band = BAND_TEXT[bands.band(row.probability_fractured)]
        check = row.radiograph_check
        tiers = ["", ""] if check is None else [_yes_no(check.looks_like_radiograph),
                                                _yes_no(check.unlike_training_data)]
        cells = [row.file_name, probability, verdict, band, f"{threshold:.6f}", *tiers]
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return buffer.getvalue()


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
