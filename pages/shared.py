"""What every page shares: the cached model, held-out figures and the threshold sidebar.

Loaders wrap plain ``core`` functions in Streamlit caches, so the model is built once per
process and shared by every session and thread.
"""

import re

import numpy as np
import streamlit as st

from core import Explainer, FractureClassifier
from core.explain import encode_png, fit_for_display, overlay_on_original
from core.figures import load_metadata
from core.heldout import HeldOutPredictions, describe_costs


def use_app_navigation() -> None:
    """Makes a deep link on a fresh server open inside the app's own navigation.

    Streamlit treats a ``pages/`` folder as legacy auto-discovered pages until the first run
    of ``st.navigation``; a first visitor to ``/batch`` would get this page alone, with every
    file in ``pages/`` listed as a page. Every page calls this first: it switches the legacy
    mode off and reruns through ``streamlit_app.py``.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# Every ASCII character that CommonMark, Streamlit's colour/icon directives (":red[…]",
# ":material/…:") or its LaTeX ("$…$") give a meaning; a backslash makes each one literal.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$/])")


def markdown_literal(text: str) -> str:
    """``text`` escaped so that Streamlit's markdown shows it as typed (file names, messages quoting a file)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


PRESETS = ("screening", "balanced", "specific")
PRESET_HELP = {"screening": "Chosen on val: sensitivity ≥ 0.90", "balanced": "Chosen on val: maximum Youden J",
               "specific": "Chosen on val: specificity ≥ 0.95"}


@st.cache_resource(show_spinner="Loading the model…")
def load_classifier() -> FractureClassifier:
    classifier = FractureClassifier.load()
    classifier.warm_up(explained_only=True)  # the pages only call classify(..., explain=True)
    return classifier


@st.cache_resource(show_spinner="Preparing the heatmap methods…")
def load_explainer() -> Explainer:
    classifier = load_classifier()
    explainer = Explainer(classifier.model, classifier.metadata["cam_layer"])
    size = classifier.preprocess_config.image_size
    explainer.explain(np.zeros((1, size, size, 1), np.uint8))  # trace the default method now
    return explainer


@st.cache_resource
def load_held_out(split: str = "test") -> HeldOutPredictions:
    return HeldOutPredictions.load(split=split)


@st.cache_data
def load_shipped_metadata() -> dict:
    """The model's metadata alone: pages that show figures need no TensorFlow."""
    return load_metadata()


@st.cache_data(max_entries=256, show_spinner=False)
def analyse_upload(data: bytes):
    """``(probability, image sized for display, model input, radiograph check, Grad-CAM heatmap)`` for one
    upload, from one compiled pass, cached by content so that moving the slider or switching pages never
    re-runs the network.

    Raises:
        core.ImageReadError: if the bytes are not a readable image.
    """
    result = load_classifier().classify(data, explain=True)
    return (result.probability_fractured, fit_for_display(result.image), result.model_input,
            result.radiograph_check, result.heatmap)


@st.cache_data(max_entries=256, show_spinner=False)
def explain_upload(data: bytes, method: str = "gradcam"):
    """The model-input heatmap (S, S) of one upload for one method, cached like the verdict."""
    analysis = analyse_upload(data)
    if method == "gradcam":
        return analysis[4]  # computed with the verdict
    return load_explainer().explain(analysis[2][None], method)[0]


@st.cache_data(max_entries=256, show_spinner=False)
def xray_png(data: bytes) -> bytes:
    """The upload as read, sized for display, as PNG bytes (encoded once, not on every rerun)."""
    image = analyse_upload(data)[1]
    return encode_png(np.round(image * 255).astype(np.uint8))


@st.cache_data(max_entries=256, show_spinner=False)
def overlay_png(data: bytes, method: str = "gradcam", opacity: float = 0.4, colormap: str = "jet") -> bytes:
    """The heatmap overlay of one upload as PNG bytes, for display and download alike."""
    image = analyse_upload(data)[1]
    heatmap = explain_upload(data, method)
    return encode_png(overlay_on_original(image, heatmap, load_classifier().preprocess_config,
                                          opacity=opacity, colormap=colormap))


def _set_threshold(value: float) -> None:
    st.session_state["threshold"] = st.session_state["saved_threshold"] = value


def threshold_sidebar() -> float:
    """The decision threshold (slider + presets) and what it costs on the test split.

    Every page calls this first. Streamlit forgets a widget's value when a page without it runs,
    so the value is also kept under a plain key and restored on each page.
    """
    thresholds = load_shipped_metadata()["thresholds"]
    saved = st.session_state.setdefault("saved_threshold", round(thresholds["screening"], 3))
    st.session_state.setdefault("threshold", saved)
    st.sidebar.subheader("Decision threshold")
    for name in PRESETS:
        st.sidebar.button(f"{name.capitalize()} · {thresholds[name]:.3f}", help=PRESET_HELP[name],
                          on_click=_set_threshold, args=(round(thresholds[name], 3),), width="stretch")
    threshold = st.sidebar.slider("P(fractured) at or above this is called a fracture", 0.0, 1.0,
                                  step=0.001, format="%.3f", key="threshold")
    st.session_state["saved_threshold"] = threshold
    point = load_held_out().at_threshold(threshold)
    st.sidebar.markdown(f"**On the held-out test split** ({point['n_positive'] + point['n_negative']} images):")
    left, right = st.sidebar.columns(2)
    left.metric("Sensitivity", percent(point["sensitivity"]))
    right.metric("Specificity", percent(point["specificity"]))
    left.metric("PPV", percent(point["ppv"]))
    right.metric("NPV", percent(point["npv"]))
    st.sidebar.caption(describe_costs(point).capitalize() + ".")
    return threshold


def percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"
