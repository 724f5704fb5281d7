"""Model performance: held-out AUROC, the current threshold's costs, ROC, calibration, subgroups.

Every number and figure comes from the files ``python -m core.evaluate`` and ``core.train``
wrote to ``models/``; nothing here runs the network.
"""

import pandas as pd
import streamlit as st

from core.figures import (calibration_figure, confusion_figure, load_history,
                          load_metrics, load_probability_rows, roc_figure, subgroup_rows, training_figure)
from core.heldout import describe_costs
from pages.shared import load_held_out, load_shipped_metadata, percent, threshold_sidebar, use_app_navigation

SPLITS = {"test": "test (held out, reported)", "val": "val (chose epoch, thresholds, calibration)"}


@st.cache_data(show_spinner=False)
def cached_metrics() -> dict:
    return load_metrics()


@st.cache_data(show_spinner=False)
def cached_history() -> list[dict]:
    return load_history()


@st.cache_data(show_spinner=False)
def cached_probability_rows() -> list[dict]:
    return load_probability_rows()


use_app_navigation()
st.title("Model performance")
st.caption("Research demo — not a medical device. Figures from the held-out splits of FracAtlas.")
metrics, metadata = cached_metrics(), load_shipped_metadata()
threshold = threshold_sidebar()
split = st.radio("Split", list(SPLITS), format_func=SPLITS.get, horizontal=True, key="performance_split")
report = metrics["splits"][split]
point = load_held_out(split).at_threshold(threshold)

st.subheader(f"At threshold {threshold:.3f} on the {split} split")
auroc = report["auroc"]
headline = st.columns(5)
headline[0].metric("AUROC", f"{auroc['auroc']:.3f}", help="Area under the ROC curve; threshold-free.")
headline[0].caption(f"95% CI {auroc['ci_low']:.3f}–{auroc['ci_high']:.3f}")
for column, (label, key, num, den) in zip(headline[1:], (
        ("Sensitivity", "sensitivity", "tp", "n_positive"), ("Specificity", "specificity", "tn", "n_negative"),
        ("PPV", "ppv", "tp", None), ("NPV", "npv", "tn", None))):
    column.metric(label, percent(point[key]))
    if den is None:  # PPV over predicted fractured, NPV over predicted not fractured
        den_value = point["tp"] + point["fp"] if key == "ppv" else point["tn"] + point["fn"]
    else:
        den_value = point[den]
    column.caption(f"{point[num]} of {den_value}")
st.markdown(f"{report['n']} images ({report['n_positive']} fractured): the model "
            f"{describe_costs(point)}. Move the threshold in the sidebar to trade one against the other.")

left, right = st.columns(2)
left.pyplot(roc_figure(metrics, split, point))
right.pyplot(confusion_figure(point))

st.subheader("By body region and orthopaedic hardware")
table = pd.DataFrame(subgroup_rows(metrics, split, threshold, cached_probability_rows()))
st.dataframe(table.rename(columns={"sensitivity": f"sensitivity @ {threshold:.3f}",
                                   "specificity": f"specificity @ {threshold:.3f}"}),
             hide_index=True, width="stretch")
st.caption("Multi-region images form the 'mixed' group. Every test image with hardware is fractured, so "
           "the model can score well there by spotting the implant; its specificity is undefined. "
           "Hips and shoulders hold two fractures each: too few to judge.")

left, right = st.columns(2)
left.pyplot(calibration_figure(metrics, split))
right.pyplot(training_figure(cached_history()))
training = metadata.get("training", {})
st.caption(f"Probabilities are temperature-scaled (T = {metadata.get('temperature', float('nan')):.3f}, fitted "
           f"on val). The kept weights are those of epoch {training.get('best_epoch', '?')}, the best val AUROC.")

st.subheader("How to read these numbers")
negatives = report["n"] - report["n_positive"]
st.markdown(f"""
**How the data was split.** FracAtlas was split once, group-aware and leakage-free: byte-identical
and near-duplicate radiographs (flipped and rotated copies included) share a group, and a group never
straddles two splits; within each body region the groups were shared out 70/15/15 (train/val/test)
for both classes. Train fitted the weights; **val** chose the epoch, the architecture, the
temperature (calibration) and the three preset thresholds; **test** was only read to report these
figures. Val figures are therefore a little optimistic.

**Why not accuracy?** Fractures are the minority: about 1 fractured radiograph to 4.7 not fractured
in FracAtlas ({report['n_positive']} to {negatives} on {split}). A "model" that always answers *no
fracture* would be right on {negatives / report['n']:.0%} of these images (82% on test) while missing
every fracture. So this page leads with AUROC, a threshold-free ranking measure, and with
sensitivity (fractures caught) and specificity (normals cleared) at the chosen threshold.
""")
