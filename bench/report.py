"""Figures with their baselines and ratios, the issue's targets, and the printed table."""

from __future__ import annotations

import math


def measure(what: str, stats: dict, unit: str = "ms", note: str = "", *, comparable: bool = True) -> dict:
    """One measured thing: what ran, its p50/p95/n (from timing.summary) and the unit.

    ``comparable=False`` marks a row shown beside a figure for reference (a breakdown, a
    context figure) rather than as its baseline: it gets no ratio.
    """
    row = {"what": what, "unit": unit, **stats, **({"note": note} if note else {})}
    return row if comparable else {**row, "reference_only": True}


def once(value: float | None) -> dict:
    """Stats of a figure measured once."""
    return {"p50": value, "p95": None, "n": 1}


def figure(key: str, label: str, ours: dict, baselines: tuple[dict, ...] = ()) -> dict:
    """A figure: our measure and each baseline with ratio = baseline p50 / our p50 (× faster)."""
    rows = [{**base, "ratio": None if base.get("reference_only") else _ratio(base["p50"], ours["p50"])}
            for base in baselines]
    return {"key": key, "label": label, "ours": ours, "baselines": rows}


def _ratio(baseline: float | None, ours: float | None) -> float | None:
    if baseline is None or ours is None or ours <= 0 or not math.isfinite(baseline):
        return None
    return baseline / ours


def target(name: str, value: float | None, limit: float, unit: str, why_not: str = "") -> dict:
    """An issue target; ``value`` None means not measured in this run, ``why_not`` says why."""
    if value is None:
        return {"name": name, "limit": limit, "unit": unit, "value": None, "passed": None,
                "not_measured": why_not or "not measured"}
    return {"name": name, "limit": limit, "unit": unit, "value": value, "passed": value <= limit}


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    digits = 1 if unit in ("MiB",) or abs(value) >= 100 else 2
    return f"{value:.{digits}f}"


def _count(row: dict) -> str:
    return "" if row.get("n") is None else str(row["n"])


def _ratio_text(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.1f}×"


def table(figures: list[dict]) -> str:
    """Fixed-width text: one line per baseline, our figure on the first line of each group."""
    header = (f"{'figure':<44} {'unit':<4} {'ours p50':>9} {'p95':>8} {'n':>4}  "
              f"{'baseline':<48} {'p50':>9} {'p95':>8} {'n':>4} {'ratio':>7}")
    lines = [header, "-" * len(header)]
    for item in figures:
        ours = item["ours"]
        left = (f"{item['label'][:44]:<44} {ours['unit']:<4} {_number(ours['p50'], ours['unit']):>9} "
                f"{_number(ours.get('p95'), ours['unit']):>8} {_count(ours):>4}  ")
        if not item["baselines"]:
            lines.append(left + "–")
        for index, base in enumerate(item["baselines"]):
            prefix = left if index == 0 else " " * len(left)
            lines.append(prefix + f"{base['what'][:48]:<48} {_number(base['p50'], base['unit']):>9} "
                                  f"{_number(base.get('p95'), base['unit']):>8} {_count(base):>4} "
                                  f"{_ratio_text(base['ratio']):>7}")
    return "\n".join(lines)


def targets_table(targets: list[dict]) -> str:
    lines = [f"{'target (issue 5)':<50} {'limit':>10} {'measured':>10}  result", "-" * 80]
    for item in targets:
        limit = f"≤ {item['limit']:g} {item['unit']}"
        if item["value"] is None:
            lines.append(f"{item['name']:<50} {limit:>10} {'–':>10}  not measured: {item['not_measured']}")
        else:
            measured = f"{_number(item['value'], item['unit'])} {item['unit']}"
            lines.append(f"{item['name']:<50} {limit:>10} {measured:>10}  {'PASS' if item['passed'] else 'FAIL'}")
    return "\n".join(lines)
