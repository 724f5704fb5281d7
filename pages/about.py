"""About: the model card, the data set's attribution and how to retrain, inside the app."""

import streamlit as st

from pages import state

CITATION = ("Abedeen I, Rahman MA, Prottyasha FZ, Ahmed T, Chowdhury TM, Shatabda S. *FracAtlas: A Dataset "
            "for Fracture Classification, Localization and Segmentation of Musculoskeletal Radiographs.* "
            "Scientific Data 10, 521 (2023). "
            "[doi:10.1038/s41597-023-02432-4](https://doi.org/10.1038/s41597-023-02432-4)")
RETRAIN = """\
# retrain (writes models/: model, metadata.json, history.csv), then evaluate
.venv/bin/python -m training.train --data-dir ../shared/datasets/fracatlas --epochs 50 --batch-size 32
.venv/bin/python -m training.evaluate    # rewrites models/metrics.json and models/probabilities.csv
.venv/bin/python -m training.report      # the model card's tables
.venv/bin/python -m training.radiograph_reference   # refits the "does not look like a radiograph" reference

# the model study (each run in runs/NAME/, the table in runs/study.md)
.venv/bin/python -m training.study --data-dir ../shared/datasets/fracatlas
"""


def disclaimer_ui() -> None:
    st.warning("**Not a medical device.** Research and teaching software only. It has not been cleared or "
               "approved by any regulator and must not be used to diagnose, treat or triage anyone. "
               "A radiologist reads the image.", icon="⚠️")


def data_ui() -> None:
    st.subheader("Data: FracAtlas")
    st.markdown("Trained and evaluated on FracAtlas (4,073 musculoskeletal radiographs from three hospitals "
                "in Bangladesh), licensed under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/). "
                f"Please cite:\n\n> {CITATION}")


def retrain_ui() -> None:
    st.subheader("How to retrain")
    st.markdown("From the project folder, with the FracAtlas images in `../shared/datasets/fracatlas` "
                "(`python -m training.fracatlas_split /path/to/FracAtlas` rebuilds our split from the "
                "official download):")
    st.code(RETRAIN, language="bash")


def model_card_ui(model_card: str) -> None:
    st.divider()
    st.markdown(model_card)


def main() -> None:
    state.use_app_navigation()
    st.title("About this model")
    disclaimer_ui()
    data_ui()
    retrain_ui()
    model_card_ui(state.load_model_card())


main()
