"""About: the model card, the data set's attribution and how to retrain, inside the app."""

import streamlit as st

from core.config import PROJECT_DIR
from pages.shared import use_app_navigation

MODEL_CARD = PROJECT_DIR / "docs" / "model-card.md"
CITATION = ("Abedeen I, Rahman MA, Prottyasha FZ, Ahmed T, Chowdhury TM, Shatabda S. *FracAtlas: A Dataset "
            "for Fracture Classification, Localization and Segmentation of Musculoskeletal Radiographs.* "
            "Scientific Data 10, 521 (2023). "
            "[doi:10.1038/s41597-023-02432-4](https://doi.org/10.1038/s41597-023-02432-4)")
RETRAIN = """\
# retrain (writes models/: model, metadata.json, history.csv), then evaluate
.venv/bin/python -m core.train --data-dir ../shared/datasets/fracatlas --epochs 50 --batch-size 32
.venv/bin/python -m core.evaluate    # rewrites models/metrics.json and models/probabilities.csv
.venv/bin/python -m core.report      # the model card's tables
.venv/bin/python -m core.ood         # refits the "does not look like a radiograph" reference

# the model study (each run in runs/NAME/, the table in runs/study.md)
.venv/bin/python -m core.study --data-dir ../shared/datasets/fracatlas
"""


@st.cache_data(show_spinner=False)
def model_card() -> str:
    """The model card as a section of this page: its own title would be a second page heading."""
    text = MODEL_CARD.read_text(encoding="utf-8")
    title, _, body = text.partition("\n")
    return f"## {title.lstrip('# ')}\n{body}" if title.startswith("# ") else text


use_app_navigation()
st.title("About this model")
st.warning("**Not a medical device.** Research and teaching software only. It has not been cleared or "
           "approved by any regulator and must not be used to diagnose, treat or triage anyone. "
           "A radiologist reads the image.", icon="⚠️")

st.subheader("Data: FracAtlas")
st.markdown("Trained and evaluated on FracAtlas (4,073 musculoskeletal radiographs from three hospitals "
            "in Bangladesh), licensed under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/). "
            f"Please cite:\n\n> {CITATION}")

st.subheader("How to retrain")
st.markdown("From the project folder, with the FracAtlas images in `../shared/datasets/fracatlas` "
            "(`python -m core.fracatlas_split /path/to/FracAtlas` rebuilds our split from the official "
            "download):")
st.code(RETRAIN, language="bash")

st.divider()
st.markdown(model_card())
