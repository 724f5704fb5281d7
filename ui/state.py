"""What the pages share: the session's decision threshold and the cached loaders.

Every session-state key of the app is defined here and nowhere else. The loaders wrap plain
``core`` functions in Streamlit caches: the model is built once per process and shared by every
session and thread, and each upload is classified once per content, so moving the slider or
switching pages never re-runs the network.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NoReturn

import numpy as np
import streamlit as st

from core import artifacts
from core.classifier import LITERT, FractureClassifier, ImageResult
from core.config import MODELS_DIR, PROJECT_DIR
from core.evaluation import ModelMetrics
from core.heatmaps import FROM_FORWARD_PASS, method_info
from core.heldout import HeldOutPredictions
from core.metadata import ModelMetadata
from core.overlay import encode_png, overlay_on_original
from core.pdf_report import ReportContext, test_cost_sentence, threshold_label
from core.remote import RemoteClassifier, RemoteServingError
from core.thresholds import OperatingThresholds
from core.triage import TriageBands

THRESHOLD_KEY = "threshold"  # the exact decision threshold every page decides with
SLIDER_KEY = "threshold_slider"  # the slider's own value: shows the threshold, sets it when moved
PHONE_SLIDER_KEY = "threshold_slider_compact"  # the same threshold, at the top of the page (phones)
SPLIT_KEY = "performance_split"  # the Model performance page's split radio
HELD_OUT_SPLIT_KEY = "held_out_split"  # the split it shows, which the sidebar's figures follow too
HELD_OUT_SPLITS = ("test", "val")
APP_START_PRESET = "screening"  # a missed fracture costs more than a false alarm
MODEL_CARD = PROJECT_DIR / "docs" / "model-card.md"
MODEL_DIR = MODELS_DIR  # the model every page shows, with its thresholds and figures (tests point it elsewhere)
# Where the model is served, when it is not in this process: the URL of serving/deployment.py.
SERVE_URL_VARIABLE = "FRACTURE_SERVE_URL"  # the environment's setting wins over the secrets file's
SERVE_URL_SECRET = "serve_url"  # in .streamlit/secrets.toml


# --- the decision threshold ------------------------------------------------------------------------

def threshold() -> float:
    """The session's threshold, exactly as stored or chosen (the screening preset at first)."""
    return st.session_state.setdefault(THRESHOLD_KEY, load_thresholds()[APP_START_PRESET])


def set_threshold(value: float) -> None:
    st.session_state[THRESHOLD_KEY] = value


def bind_threshold_slider(key: str = SLIDER_KEY) -> dict:
    """``key`` and ``on_change`` of a threshold slider, its value first set to the exact threshold.

    The slider is a new widget on each page (Streamlit's widget ids include the page) and holds
    multiples of its step, so the exact threshold lives under its own key: the slider is set
    from it on every run and replaces it only when the user moves it. Two sliders (the sidebar's
    and the compact one for phones) share the threshold this way.
    """
    st.session_state[key] = threshold()
    return {"key": key, "on_change": _take_slider_value, "args": (key,)}


def _take_slider_value(key: str = SLIDER_KEY) -> None:
    set_threshold(st.session_state[key])


# --- the held-out split the figures are about ------------------------------------------------------

def held_out_split() -> str:
    """The split the Model performance page shows and the sidebar's figures follow ("test" at first)."""
    return st.session_state.get(HELD_OUT_SPLIT_KEY, HELD_OUT_SPLITS[0])


def set_held_out_split(split: str) -> None:
    if split not in HELD_OUT_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(HELD_OUT_SPLITS)}")
    st.session_state[HELD_OUT_SPLIT_KEY] = split


def bind_split_radio() -> dict:
    """``key`` and ``on_change`` of the split radio: like the threshold, the choice outlives the
    widget, which Streamlit forgets when the user opens another page."""
    st.session_state[SPLIT_KEY] = held_out_split()
    return {"key": SPLIT_KEY, "on_change": _take_split_choice}


def _take_split_choice() -> None:
    set_held_out_split(st.session_state[SPLIT_KEY])


# --- the session's uploads -----------------------------------------------------------------------

@dataclass(frozen=True)
class Upload:
    """One image the session holds (in memory only; uploads are never written to disk)."""

    name: str
    data: bytes
    key: str  # distinct within the page's list: the uploader's file id, or "sample:<name>"


def uploads(page: str) -> list[Upload]:
    """The images the session has added on ``page`` ("classify" or "batch"), in the order added.

    A ``st.file_uploader`` forgets its files when the user opens another page (Streamlit drops the
    state of every widget that a run does not draw), so the uploader is only where files come
    in: :func:`uploader_kwargs` copies each new file into this list, which lives as long as the
    session.
    """
    return list(st.session_state.setdefault(_uploads_key(page), []))


def add_upload(page: str, name: str, data: bytes, key: str) -> None:
    """Adds one image to ``page``'s list, unless one with the same ``key`` is there already."""
    held = st.session_state.setdefault(_uploads_key(page), [])
    if all(upload.key != key for upload in held):
        held.append(Upload(name, data, key))


def remove_upload(page: str, key: str) -> None:
    st.session_state[_uploads_key(page)] = [upload for upload in uploads(page) if upload.key != key]


def clear_uploads(page: str) -> None:
    st.session_state[_uploads_key(page)] = []
    st.session_state[_uploader_generation_key(page)] = st.session_state.get(_uploader_generation_key(page), 0) + 1


def uploader_kwargs(page: str) -> dict:
    """``key`` and ``on_change`` of ``page``'s ``st.file_uploader`` (with accept_multiple_files=True).

    Each file the uploader receives is copied into :func:`uploads`; a file removed with the
    uploader's own x is removed from the list too. Files added on an earlier visit of the page
    (no longer in the new uploader) stay until removed with :func:`remove_upload`.
    """
    widget_key = f"uploader-{page}-{st.session_state.get(_uploader_generation_key(page), 0)}"
    if widget_key not in st.session_state:  # a fresh uploader (first run, or back from another page)
        st.session_state[_seen_key(widget_key)] = set()
    return {"key": widget_key, "on_change": _sync_uploader, "args": (page, widget_key)}


def _sync_uploader(page: str, widget_key: str) -> None:
    files = st.session_state.get(widget_key) or []
    now = {file.file_id for file in files}
    for removed in st.session_state.get(_seen_key(widget_key), set()) - now:
        remove_upload(page, removed)
    for file in files:
        add_upload(page, file.name, file.getvalue(), file.file_id)
    st.session_state[_seen_key(widget_key)] = now


def _seen_key(widget_key: str) -> str:
    return f"{widget_key}-seen"  # the file ids this uploader held after its last change


def _uploads_key(page: str) -> str:
    return f"uploads-{page}"


def _uploader_generation_key(page: str) -> str:
    # A new key gives a new, empty uploader: the only way to empty one.
    return f"uploader-generation-{page}"


# --- what models/ holds ----------------------------------------------------------------------------

_MODEL_LOADER_LOCK = threading.Lock()
_model_loader: threading.Thread | None = None


def start_loading_classifier() -> None:
    """Starts :func:`load_classifier` on a thread of its own, once per process, and returns at once.

    A fresh server's first page can then draw its guide, sample gallery and Plotly charts while
    TensorFlow loads, instead of before. The cache computes the value once: a page that calls
    :func:`load_classifier` meanwhile waits for this thread's result.
    """
    global _model_loader
    with _MODEL_LOADER_LOCK:
        if _model_loader is None:
            _model_loader = threading.Thread(target=_load_in_background, name="model-loader", daemon=True)
            _model_loader.start()


def _load_in_background() -> None:
    try:
        load_classifier()
    except RemoteServingError:
        pass  # the page's own call to load_classifier shows the reason; a thread would only log it


def serve_url() -> str | None:
    """The fracture server's URL, from ``FRACTURE_SERVE_URL`` or else ``st.secrets["serve_url"]``;
    None (the model runs in this process) when neither is set. A missing secrets file is no error."""
    url = os.environ.get(SERVE_URL_VARIABLE, "").strip()
    if not url and st.secrets.load_if_toml_exists():
        url = str(st.secrets.get(SERVE_URL_SECRET, "")).strip()
    return url or None


@st.cache_resource(show_spinner="Loading the model…")
def load_classifier() -> FractureClassifier | RemoteClassifier:
    """The model every page classifies with: in this process (the default), or the Ray Serve
    deployment that :func:`serve_url` names, which answers the same.

    A server that cannot be reached stops the page with a message saying so; nothing is cached,
    so the next run tries again.
    """
    url = serve_url()
    if url is None:
        classifier = FractureClassifier.load(MODEL_DIR)
        classifier.warm_up()  # the model's default heatmap, which classify_upload asks for
        return classifier
    try:
        return RemoteClassifier.connect(url, expected_version=load_metadata().model_version)
    except (RemoteServingError, ValueError) as error:
        stop_for_serving_error(error)


def default_heatmap() -> str:
    """The model's own default heatmap method: the one every upload comes with and every heatmap
    select box starts on."""
    return load_classifier().default_heatmap


def heatmap_methods() -> tuple[str, ...]:
    """The keys of :data:`core.heatmaps.REGISTRY` the model can draw, in that order (the fracture
    map only for a model that has one)."""
    return tuple(load_classifier().explainer.methods)


def stop_for_serving_error(error: Exception) -> NoReturn:
    """Shows why the fracture server cannot answer, and ends this run of the page."""
    # A code span shows the URL and the reason as they are, whatever markdown they hold.
    detail = str(error).replace("`", "'")
    st.error(f"The fracture server cannot answer: `{detail}`. Check that it is running, or remove the "
             f"`{SERVE_URL_VARIABLE}` or `{SERVE_URL_SECRET}` setting to classify within this app.")
    st.stop()
    raise error  # outside a page run (the loader thread) st.stop returns: raising keeps a None out of the cache


@st.cache_resource  # OperatingThresholds holds a mapping proxy, which cache_data cannot pickle
def load_thresholds() -> OperatingThresholds:
    """The preset thresholds without TensorFlow: the sidebar draws before the model loads."""
    return artifacts.load_thresholds(MODEL_DIR)


@st.cache_resource
def load_held_out(split: str = "test") -> HeldOutPredictions:
    return HeldOutPredictions.from_rows(load_probability_rows(), split)  # probabilities.csv is read once


@st.cache_resource(show_spinner=False)  # frozen records, shared read-only by every session
def load_metadata() -> ModelMetadata:
    return artifacts.load_metadata(MODEL_DIR)


@st.cache_resource(show_spinner=False)
def load_metrics() -> ModelMetrics:
    return artifacts.load_metrics(MODEL_DIR)


@st.cache_data(show_spinner=False)
def load_history() -> list[dict]:
    return artifacts.load_history(MODEL_DIR)


@st.cache_data(show_spinner=False)
def load_probability_rows() -> list[dict]:
    return artifacts.load_probability_rows(MODEL_DIR)


@st.cache_data(show_spinner=False)
def load_model_card() -> str:
    """The model card as a section of a page: its own title would be a second page heading."""
    text = MODEL_CARD.read_text(encoding="utf-8")
    title, _, body = text.partition("\n")
    return f"## {title.lstrip('# ')}\n{body}" if title.startswith("# ") else text


# --- one upload, cached by its content ------------------------------------------------------------

@st.cache_data(max_entries=256, show_spinner=False)
def classify_upload(data: bytes) -> ImageResult:
    """The verdict and the model's default heatmap of one upload (from one compiled pass), with
    its image sized for display (the cache pickles every value it keeps).

    Raises:
        core.imaging.ImageReadError: if the bytes are not a readable image.
    """
    try:
        return load_classifier().classify(data, heatmap=default_heatmap()).for_display()
    except RemoteServingError as error:  # the server went away after the app connected
        stop_for_serving_error(error)


_TENSORFLOW_LOADER_LOCK = threading.Lock()
_tensorflow_loader: threading.Thread | None = None


def _tensorflow_pending() -> FractureClassifier | None:
    """The in-process classifier on LiteRT whose TensorFlow explainer is not loaded yet, if any."""
    classifier = load_classifier()
    if isinstance(classifier, FractureClassifier) and classifier.runtime == LITERT and classifier.explainer is not None:
        return None if classifier.explainer.loaded else classifier
    return None


def start_loading_tensorflow() -> None:
    """Loads TensorFlow, the Keras model and the gradient heatmaps' explainer on a thread of its own,
    once per process, for a classifier on LiteRT (issue 22): the first answer never waits for it,
    and a user who then picks Grad-CAM or another method seldom does."""
    global _tensorflow_loader
    classifier = _tensorflow_pending()
    if classifier is None:
        return
    with _TENSORFLOW_LOADER_LOCK:
        if _tensorflow_loader is None:
            _tensorflow_loader = threading.Thread(target=classifier.explainer.tensorflow_explainer,
                                                  name="tensorflow-loader", daemon=True)
            _tensorflow_loader.start()


def heatmap_of(data: bytes, method: str) -> np.ndarray:
    """The model-input heatmap (S, S) of one upload for one method.

    On LiteRT a method other than the model's own map needs TensorFlow: while it loads, a spinner
    says so. Once an answer has its default heatmap, TensorFlow starts loading in the background."""
    if method_info(method).source != FROM_FORWARD_PASS and _tensorflow_pending() is not None:
        with st.spinner(f"Loading TensorFlow for {method_info(method).label} (first use: a few seconds)…"):
            heatmap = _heatmap_of(data, method)
    else:
        heatmap = _heatmap_of(data, method)
    start_loading_tensorflow()
    return heatmap


@st.cache_data(max_entries=256, show_spinner=False)
def _heatmap_of(data: bytes, method: str) -> np.ndarray:
    result = classify_upload(data)
    if method == result.heatmap_method:
        return result.heatmap
    try:
        return load_classifier().explainer.explain(result.model_input[None], method)[0]
    except RemoteServingError as error:
        stop_for_serving_error(error)


heatmap_of.clear = _heatmap_of.clear  # one cache, cleared as the other cached loaders are


@st.cache_data(max_entries=256, show_spinner=False)
def xray_png(data: bytes) -> bytes:
    """The upload as read, sized for display, as PNG bytes (encoded once, not on every rerun)."""
    return encode_png(np.round(classify_upload(data).image * 255).astype(np.uint8))


@st.cache_data(max_entries=256, show_spinner=False)
def overlay_png(data: bytes, method: str, opacity: float = 0.4, colormap: str = "jet") -> bytes:
    """The heatmap overlay of one upload as PNG bytes, for display and download alike."""
    result = classify_upload(data)
    rgb = overlay_on_original(result.image, _heatmap_of(data, method), load_classifier().preprocess_config,
                              source_shape=result.source_shape, opacity=opacity, colormap=colormap)
    return encode_png(rgb)


# --- what a PDF report states ---------------------------------------------------------------------

def report_context(threshold: float, bands: TriageBands) -> ReportContext:
    """The threshold, its test-split cost, the bands and the model, as the PDF reports state them."""
    return ReportContext(threshold, threshold_label(load_thresholds(), threshold),
                         test_cost_sentence(load_held_out().at_threshold(threshold)), bands,
                         load_classifier().version, datetime.now(timezone.utc))
