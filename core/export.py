"""What leaves the app and the CLI: the per-image JSON report and the batch CSV.

Neither holds pixel data or anything read from the file besides its name.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from core.radiograph_check import RadiographCheck
from core.thresholds import decide

VERDICT_TEXT = {"fractured": "Fracture suspected", "not_fractured": "No fracture detected"}


def verdict_report(file_name: str, probability_fractured: float, threshold: float, *,
                   method: str, model_version: str, radiograph_check: RadiographCheck | None = None) -> dict:
    """The JSON report the app offers per image (no pixel data, no patient data)."""
    decision = decide(probability_fractured, threshold)
    report = {"file_name": file_name, "probability_fractured": round(float(probability_fractured), 6),
              "threshold": round(float(threshold), 6), "decision": decision,
              "verdict": VERDICT_TEXT[decision], "method": method, "model_version": model_version}
    if radiograph_check is not None:
        report["looks_like_radiograph"] = radiograph_check.looks_like_radiograph
        report["unreliable_because"] = list(radiograph_check.reasons)
    return report


@dataclass(frozen=True)
class BatchRow:
    """One upload of a batch: its name, and its probability or why it could not be read."""

    file_name: str
    probability_fractured: float | None = None
    error: str | None = None


def results_csv(rows: list[BatchRow], threshold: float) -> str:
    """CSV text with one line per row: file, P(fractured), verdict (or the error) at ``threshold``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "probability_fractured", "verdict", "threshold"])
    for row in rows:
        if row.probability_fractured is None:
            probability, verdict = "", f"unreadable: {row.error}"
        else:
            probability = f"{row.probability_fractured:.6f}"
            verdict = VERDICT_TEXT[decide(row.probability_fractured, threshold)]
        writer.writerow([row.file_name, probability, verdict, f"{threshold:.6f}"])
    return buffer.getvalue()
