"""Model performance: held-out AUROC, the current threshold's costs, ROC, calibration, subgroups.

Every number and figure comes from the files ``python -m training.evaluate`` and the trainer
wrote to ``models/``, read as typed records (``core.evaluation``, ``core.metadata``); nothing here
runs the network.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.evaluation import ModelMetrics, SplitReport
from core.figures import (SubgroupRow, calibration_figure, confusion_figure, roc_figure, subgroup_rows,
                          training_figure)
from core.metadata import ModelMetadata
from core.metrics import OperatingPoint
from core.heldout import describe_costs
from ui import state
from ui.entrypoint import run_entrypoint
from core.heldout import percent
from ui.widgets import threshold_sidebar

SPLITS = {"test": "test (held out, reported)", "val": "val (chose the model, thresholds, calibration)"}


def heading_ui() -> None:
    st.title("Model performance")
    st.caption("Research demo — not a medical device. Figures from the held-out splits of FracAtlas.")


def split_ui() -> str:
    """The split this page shows; the sidebar's figures follow it, on every page."""
    return st.radio("Split", list(SPLITS), format_func=SPLITS.get, horizontal=True,
                    help="The sidebar's sensitivity, specificity, PPV and NPV follow this choice.",
                    **state.bind_split_radio())


def headline_ui(report: SplitReport, point: OperatingPoint, split: str, threshold: float) -> None:
    st.subheader(f"At threshold {threshold:.3f} on the {split} split")
    auroc = report.auroc
    headline = st.columns(5)
    headline[0].metric("AUROC", f"{auroc.auroc:.3f}", help="Area under the ROC curve; threshold-free.")
    headline[0].caption(f"95% CI {auroc.ci_low:.3f}–{auroc.ci_high:.3f}")
    for column, (label, value, hits, out_of) in zip(headline[1:], (
            ("Sensitivity", point.sensitivity, point.tp, point.n_positive),
            ("Specificity", point.specificity, point.tn, point.n_negative),
            ("PPV", point.ppv, point.tp, point.predicted_fractured),
            ("NPV", point.npv, point.tn, point.predicted_normal))):
        column.metric(label, percent(value))
        column.caption(f"{hits} of {out_of}")
    st.markdown(f"{report.n} images ({report.n_positive} fractured): the model "
                f"{describe_costs(point)}. Move the threshold in the sidebar to trade one against the other.")


def curves_ui(metrics: ModelMetrics, split: str, point: OperatingPoint) -> None:
    left, right = st.columns(2)
    left.pyplot(roc_figure(metrics, split, point))
    right.pyplot(confusion_figure(point))


def subgroups_ui(metrics: ModelMetrics, split: str, threshold: float, probability_rows: list[dict]) -> None:
    st.subheader("By body region and orthopaedic hardware")
    st.dataframe(subgroup_table(subgroup_rows(metrics, split, threshold, probability_rows), threshold),
                 hide_index=True, width="stretch")
    st.caption("Images of more than one body region form the 'Several regions' group. Every test image with "
               "an implant is fractured, so the model can score well there by spotting the implant, and its "
               "specificity cannot be measured. Hips and shoulders hold two fractures each: too few to judge.")


def subgroup_table(rows: list[SubgroupRow], threshold: float) -> pd.DataFrame:
    """The subgroup rows as shown: readable group names, percentages, and a reason instead of a
    blank where a group has no fractures or no normals."""
    return pd.DataFrame([{
        "Group": row.group, "Images": row.images, "Fractured": row.fractured,
        "AUROC (95% CI)": row.auroc_text,
        f"Sensitivity at {threshold:.3f}": percent(row.sensitivity, missing="– (no fractures)"),
        f"Specificity at {threshold:.3f}": percent(row.specificity, missing="– (no normals)"),
    } for row in rows])


def calibration_ui(metrics: ModelMetrics, split: str, history: list[dict], metadata: ModelMetadata) -> None:
    left, right = st.columns(2)
    left.pyplot(calibration_figure(metrics, split))
    right.pyplot(training_figure(history, metadata.training))
    st.caption(f"{metadata.calibration.sentence()} {metadata.training.sentence()}")


def reading_guide_ui(report: SplitReport, split: str) -> None:
    st.subheader("How to read these numbers")
    negatives = report.n_negative
    st.markdown(f"""
**How the data was split.** FracAtlas was split once, group-aware and leakage-free: byte-identical
and near-duplicate radiographs (flipped and rotated copies included) share a group, and a group never
straddles two splits; within each body region the groups were shared out 70/15/15 (train/val/test)
for both classes. Train fitted the weights; **val** chose the architecture and the default heatmap,
whether to apply a temperature (calibration) and the three preset thresholds; **test** was only read
to report these figures. Val figures are therefore a little optimistic.

**Why not accuracy?** Fractures are the minority: about 1 fractured radiograph to 4.7 not fractured
in FracAtlas ({report.n_positive} to {negatives} on {split}). A "model" that always answers *no
fracture* would be right on {negatives / report.n:.0%} of these images (82% on test) while missing
every fracture. So this page leads with AUROC, a threshold-free ranking measure, and with
sensitivity (fractures caught) and specificity (normals cleared) at the chosen threshold.
""")


def main() -> None:
    heading_ui()
    metrics = state.load_metrics()
    threshold = threshold_sidebar()
    split = split_ui()
    report = metrics.split(split)
    point = state.load_held_out(split).at_threshold(threshold)
    headline_ui(report, point, split, threshold)
    curves_ui(metrics, split, point)
    subgroups_ui(metrics, split, threshold, state.load_probability_rows())
    calibration_ui(metrics, split, state.load_history(), state.load_metadata())
    reading_guide_ui(report, split)


if __name__ == "__main__":  # run as a script, which only Streamlit's legacy pages/ mode does
    run_entrypoint()
