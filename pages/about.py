"""About: for a clinician first, in one screen (what it is, how to read it, the data and the
limits); the model card and the retrain commands below, folded away."""

from collections.abc import Mapping

import streamlit as st

from core.evaluation import ModelMetrics, PointingFigures
from core.heatmaps import METHODS
from core.heldout import describe_costs
from core.thresholds import PRESETS
from core.triage import BAND_TEXT, DOUBT_BAND, FRACTURE_BAND, NO_FRACTURE_BAND, TriageBands
from ui import state
from ui.entrypoint import run_entrypoint
from ui.state import APP_START_PRESET
from ui.widgets import localisation_sentence

CITATION = ("Abedeen I, Rahman MA, Prottyasha FZ, Ahmed T, Chowdhury TM, Shatabda S. *FracAtlas: A Dataset "
            "for Fracture Classification, Localization and Segmentation of Musculoskeletal Radiographs.* "
            "Scientific Data 10, 521 (2023). "
            "[doi:10.1038/s41597-023-02432-4](https://doi.org/10.1038/s41597-023-02432-4)")
RETRAIN = """\
# retrain Model v2 (writes models/: model, metadata.json with its lineage, history.csv, tier 2's reference)
.venv/bin/python -m training.train_box --data-dir ../shared/datasets/fracatlas
.venv/bin/python -m training.evaluate       # rewrites models/metrics.json and models/probabilities.csv
.venv/bin/python -m training.localisation   # the default heatmap's pointing game, for the caption
.venv/bin/python -m training.report         # the model card's tables
.venv/bin/python -m training.radiograph_detector    # refits tier 1, "not a radiograph" (independent of the network)

# the studies: Model v2's heads on cached backbone maps, and v1's residual CNN
.venv/bin/python -m training.box_study --size 224
.venv/bin/python -m training.study --data-dir ../shared/datasets/fracatlas
"""
LIMITS = (
    "**Tested on one data set only**: three hospitals in Bangladesh. Other hospitals, scanners, "
    "children and other body parts are untested, and likely worse.",
    "**Implants**: every test image with an implant is fractured, so the model may answer "
    "\"fracture\" for the implant. Look at the heatmap of any image with hardware.",
    "**Small and subtle fractures**: the network sees the image at 224 px; hairline fractures, and "
    "many in the hand, may be missed.",
    "**Fracture mimics**: open growth plates in children, nutrient canals, overlapping bones, skin "
    "folds and cast edges were never taught as normal; the model may flag them.",
    "**Image level only**: one probability per image. The heatmap is not a fracture finder.",
    "**PPV and NPV depend on prevalence**: FracAtlas has about 1 fractured image in 6; where "
    "fractures are rarer, more of the alarms are false.",
)


def disclaimer_ui() -> None:
    st.warning("**Not a medical device.** Research and teaching software only. It has not been cleared or "
               "approved by any regulator and must not be used to diagnose, treat or triage anyone. "
               "A radiologist reads the image.", icon="⚠️")


def what_it_is_ui(metrics: ModelMetrics, default_costs: str) -> None:
    test = metrics.split("test")
    auroc = test.auroc.auroc
    st.markdown(f"A convolutional neural network reads one bone X-ray (hand, leg, hip or shoulder) and gives the "
                f"probability of a fracture, a triage band and a heatmap of where it looked. On "
                f"{test.n} held-out test radiographs it ranks a fractured image above a normal one "
                f"{100 * auroc:.0f}% of the time (AUROC {auroc:.3f}); at the default "
                f"threshold it {default_costs}.")


def how_to_read_ui(bands: TriageBands, localisation: Mapping[str, PointingFigures], default_heatmap: str) -> None:
    """The verdict's bands, the threshold, and the heatmap: which method this model draws first
    and how far its peak is to be trusted, as measured."""
    st.subheader("How to read a result")
    verdict, threshold, heatmap = st.columns(3)
    verdict.markdown(
        f"**The verdict** comes in three bands, set on the validation split: "
        f":green[**{BAND_TEXT[NO_FRACTURE_BAND]}**] below P = {bands.doubt_from:.3f}, "
        f":orange[**{BAND_TEXT[DOUBT_BAND]}**] in between (look closely), "
        f":red[**{BAND_TEXT[FRACTURE_BAND]}**] from P = {bands.fracture_from:.3f}.")
    threshold.markdown(
        "**The threshold** (in the sidebar; on a phone, under *Decision threshold* at the top) makes the "
        "yes/no call: at or above it, a fracture is suspected. "
        "Lower catches more fractures and raises more false alarms. Presets: "
        + ", ".join(f"*{preset.label.lower()}*" for preset in PRESETS) + ".")
    heatmap.markdown("**The heatmap** shows what drove the score, scaled to each image's own peak: red is "
                     f"where the network looked most, not a finding. This model's default heatmap is "
                     f"{METHODS[default_heatmap]}. {localisation_sentence(localisation, default_heatmap)}".strip())


def data_and_limits_ui() -> None:
    data, limits = st.columns([2, 3])
    with data:
        st.subheader("Data")
        st.markdown("Trained and evaluated on FracAtlas: 4,073 musculoskeletal radiographs from three hospitals "
                    "in Bangladesh, labelled by radiologists, under "
                    f"[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/). Please cite:\n\n> {CITATION}")
    with limits:
        st.subheader("Limits")
        st.markdown("\n".join(f"- {limit}" for limit in LIMITS))


def developer_ui(model_card: str) -> None:
    """The model card and the retrain commands, folded away below the clinician's screen."""
    st.divider()
    with st.expander("Model card: architecture, training, every figure (for developers)",
                     icon=":material/description:"):
        st.markdown(model_card)
    with st.expander("How to retrain", icon=":material/terminal:"):
        st.markdown("From the project folder, with the FracAtlas images in `../shared/datasets/fracatlas` "
                    "(`python -m training.fracatlas_split /path/to/FracAtlas` rebuilds our split from the "
                    "official download):")
        st.code(RETRAIN, language="bash")


def main() -> None:
    st.title("About this model")
    disclaimer_ui()
    thresholds = state.load_thresholds()
    metrics = state.load_metrics()
    default = state.load_held_out("test").at_threshold(thresholds[APP_START_PRESET])
    what_it_is_ui(metrics, describe_costs(default))
    how_to_read_ui(TriageBands.from_thresholds(thresholds), metrics.localisation, state.default_heatmap())
    data_and_limits_ui()
    developer_ui(state.load_model_card())


if __name__ == "__main__":  # run as a script, which only Streamlit's legacy pages/ mode does
    run_entrypoint()
