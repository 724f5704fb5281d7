"""Classify: drop X-rays (or pick a sample), see each one's triage band, verdict and heatmap at the
current threshold, in a viewer that zooms the X-ray and its heatmap together."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import streamlit as st

from core.classifier import ImageResult
from core.reports import VERDICT_TEXT, verdict_report
from core.heatmaps import METHODS, REGISTRY
from core.imaging import SUPPORTED_FORMATS, ImageReadError
from core.imaging.windowing import Window, WindowableImage, window_presets
from core.overlay import OUTLINE_LEVEL, overlay_on_original, shown_opacity
from core.pdf_report import ReportContext, image_report, image_report_pdf
from core.preprocessing import PreprocessConfig
from core.samples import SampleManifestError, boxes_for_upload
from core.thresholds import FRACTURED_DECISION
from core.triage import BAND_MEANING, BAND_TEXT, TriageBands, shown_comparison, shown_decimals
from ui import state, viewer
from ui.entrypoint import run_entrypoint
from ui.gallery import gallery_ui
from ui.widgets import (band_alert, heatmap_method_select, localisation_sentence, markdown_literal,
                        radiograph_notice_ui, threshold_sidebar, uploads_ui)

logger = logging.getLogger(__name__)

PAGE = "classify"  # this page's list of uploads in ui.state
PDF_LABEL = "Report (PDF)"
UPLOADER_LABEL = f"Drop one or more X-rays ({', '.join(SUPPORTED_FORMATS)})"
TITLE_ANCHOR = "bone-fracture-detection"
COLORMAPS = ("jet", "inferno", "viridis", "magma", "turbo")
MANUAL_WINDOW = "Manual"
HOW_TO_READ = (
    "**The verdict** gives P(fractured) and a triage band: red *fracture* (the model is confident), "
    "amber *doubt* (look closely), green *no fracture*.",
    "**The threshold** (under *Decision threshold*) calls a fracture at or above it: lower catches more "
    "fractures but raises more false alarms, as its test-split figures show.",
    "**The heatmap** shows where the model found the evidence, scaled to its own peak: not a certainty, "
    "often not the fracture line itself (its measured hit rate is under the viewer), and faded when the "
    "image is not flagged.",
)


@dataclass(frozen=True)
class HeatmapStyle:
    method: str  # a key of core.heatmaps.METHODS
    opacity: float = 0.4
    colormap: str = COLORMAPS[0]
    layout: str = viewer.SIDE_BY_SIDE
    show_boxes: bool = False  # the radiologists' boxes, for a sample that has them


def heading_ui() -> None:
    st.title("Bone fracture detection", anchor=TITLE_ANCHOR)
    st.caption("Research demo — not a medical device. Do not use for diagnosis.")


def how_to_read_ui(threshold: float) -> None:
    """Three sentences: how to read the verdict, the threshold and the heatmap; and the bands
    with the session's threshold, as each verdict shows them."""
    for column, sentence in zip(st.columns(len(HOW_TO_READ)), HOW_TO_READ):
        column.markdown(sentence)
    band_strip_ui(TriageBands.from_thresholds(state.load_thresholds()), threshold, f"{threshold:.3f}",
                  key="band-strip-guide")


def verdict_ui(name: str, result: ImageResult, threshold: float, bands: TriageBands, file_id: str) -> None:
    """One alert: the band (its colour), the yes/no verdict at the session's threshold and the file
    name, with every number shown precisely enough to agree with both; ``file_id`` (the upload's
    key) keys its band strip, which two uploads of the same P(fractured) would otherwise share."""
    probability = result.probability_fractured
    band = bands.band(probability)
    decision = result.decision(threshold)
    decimals = shown_decimals(probability, threshold, bands.doubt_from, bands.fracture_from)
    shown = shown_comparison(probability, threshold, decimals=decimals)
    band_alert(band, f"**{BAND_TEXT[band]}** · {markdown_literal(name)}  \n"
                     f"**{VERDICT_TEXT[decision]}** at your threshold: P(fractured) = {shown}")
    band_strip_ui(bands, threshold, shown.threshold, probability, shown.probability, key=f"band-strip-{file_id}")
    st.caption(f"{BAND_TEXT[band]}: {BAND_MEANING[band]}. Bands, chosen on val: no fracture below "
               f"{bands.doubt_from:.{decimals}f}, doubt up to {bands.fracture_from:.{decimals}f}, fracture from there.")
    radiograph_notice_ui(result.radiograph_check)


def band_strip_ui(bands: TriageBands, threshold: float, threshold_text: str, probability: float | None = None,
                  probability_text: str = "", *, key: str) -> None:
    """The band strip; ``key`` is required: two strips of the same numbers are the same element
    to Streamlit unless keyed apart (``StreamlitDuplicateElementId``)."""
    figure = viewer.band_strip_figure(bands, threshold, threshold_text=threshold_text, probability=probability,
                                      probability_text=probability_text)
    st.plotly_chart(figure, key=key, config=viewer.STATIC_CONFIG, theme=None)


def heatmap_controls_ui(file_id: str, has_boxes: bool) -> HeatmapStyle:
    """The heatmap's settings for one image, drawn right under its viewer."""
    method_column, opacity_column, colormap_column, layout_column = st.columns([3, 2.5, 2, 3.5])
    help_text = method_help(state.default_heatmap(), state.heatmap_methods())
    method = heatmap_method_select(f"method-{file_id}", help_text, method_column)
    opacity = opacity_column.slider("Heatmap opacity", 0.0, 1.0, HeatmapStyle.opacity, 0.05, key=f"opacity-{file_id}")
    colormap = colormap_column.selectbox("Colormap", COLORMAPS, key=f"colormap-{file_id}")
    layout = layout_column.segmented_control("View", viewer.LAYOUTS, default=viewer.SIDE_BY_SIDE,
                                             key=f"layout-{file_id}") or viewer.SIDE_BY_SIDE
    show_boxes = has_boxes and st.toggle("Show the radiologists' boxes", key=f"boxes-{file_id}",
                                         help="FracAtlas's fracture boxes for this sample: judge the heatmap "
                                              "against the truth.")
    return HeatmapStyle(method, opacity, colormap, layout, show_boxes)


def method_help(default: str, methods: tuple[str, ...]) -> str:
    """The method box's help: which heatmap is this model's default (free: it comes with the
    verdict), and what each other one of ``methods`` costs."""
    others = ", ".join(f"{REGISTRY[method].label} {REGISTRY[method].cost}" for method in methods if method != default)
    return (f"Each explains the 'fractured' output. {METHODS[default]}, this model's default, comes with the "
            f"verdict; the others take, per image on CPU: {others}.")


def window_ui(windowable: WindowableImage | None, file_id: str) -> Window | None:
    """DICOM only: the window/level to show the X-ray through (the verdict does not depend on it)."""
    if windowable is None:
        return None
    presets = window_presets(windowable)
    choice = st.selectbox("Window", [*presets, MANUAL_WINDOW], key=f"window-{file_id}",
                          help="How the DICOM's values map to grey, for viewing only: the model always "
                               "reads the file's own window.")
    if choice != MANUAL_WINDOW:
        return presets[choice]
    lowest, highest = windowable.value_range
    default = windowable.default
    start = (max(lowest, default.center - default.width / 2), min(highest, default.center + default.width / 2))
    low, high = st.slider("Window: black at, white at", lowest, max(highest, lowest + 1.0), start,
                          key=f"manual-window-{file_id}")
    return Window.spanning(low, high)


def viewer_ui(data: bytes, file_id: str, style: HeatmapStyle, flagged: bool, window: Window | None) -> None:
    slow = REGISTRY[style.method].slow
    label = REGISTRY[style.method].label
    with st.spinner(f"Computing {label}{' (slow on CPU)' if slow else ''}…", show_time=slow):
        heatmap = viewer.image_heatmap(data, style.method)
    picture = viewer.xray_picture(data, window)
    layer = viewer.HeatmapLayer(heatmap, style.colormap, shown_opacity(style.opacity, flagged),
                                viewer.outlines_on(picture, heatmap) if flagged else ())
    boxes = sample_boxes(data) if style.show_boxes else ()
    figure = viewer.viewer_figure(picture, layer, layout=style.layout, boxes=boxes, revision=file_id)
    st.plotly_chart(figure, key=f"viewer-{file_id}", config=viewer.PLOTLY_CONFIG, theme=None)
    st.caption(heatmap_caption(style.method, flagged, boxes=bool(boxes)))


def heatmap_caption(method: str, flagged: bool, *, boxes: bool = False) -> str:
    """What the viewer shows, and how far to trust ``method``'s heatmap as measured."""
    default = " (this model's default)" if method == state.default_heatmap() else ""
    shown = f"{METHODS[method]} for 'fractured'{default}"
    if flagged:
        seen = (f"{shown}. White outlines: where the map reaches {OUTLINE_LEVEL:.0%} of its "
                "own peak. Drag to pan, scroll or pinch to zoom, double-click to reset.")
    else:
        seen = (f"{shown}, **faded: the image is not flagged** at your threshold. Each map is "
                "scaled to its own peak, so even a clear normal has a hot spot.")
    if boxes:
        seen += " Green dashed: the radiologists' fracture box."
    return f"{seen} {localisation_sentence(state.load_metrics().localisation, method)}".strip()


def sample_boxes(data: bytes) -> tuple:
    """The radiologists' boxes when ``data`` is a shipped sample; none when the samples are not
    shipped or their manifest is broken (the gallery says so; a verdict must not depend on it)."""
    try:
        return boxes_for_upload(data)
    except SampleManifestError:
        return ()


def downloads_ui(name: str, file_id: str, style: HeatmapStyle, overlay: bytes, report: dict,
                 make_pdf: Callable[[], bytes]) -> None:
    stem = Path(name).stem
    png, json_column, pdf, _ = st.columns([1, 1, 1, 1])
    png.download_button("Overlay (PNG)", overlay, f"{stem}_{style.method}.png", "image/png", key=f"png-{file_id}")
    json_column.download_button("Report (JSON)", json.dumps(report, indent=2), f"{stem}_report.json",
                                "application/json", key=f"json-{file_id}")
    # A callable: the PDF is drawn only when the button is clicked, not on every rerun.
    pdf.download_button(PDF_LABEL, make_pdf, f"{stem}_report.pdf", "application/pdf", key=f"pdf-{file_id}",
                        on_click="ignore", icon=":material/picture_as_pdf:")


def pdf_report(name: str, result: ImageResult, heatmap: np.ndarray, config: PreprocessConfig, style: HeatmapStyle,
               flagged: bool, context: ReportContext) -> bytes:
    """The one-page PDF of this image as the viewer shows it: the chosen method and colormap, the
    map faded when the image is not flagged. Run when the button is clicked, on a thread of its
    own, so it uses ``core`` only."""
    overlay = overlay_on_original(result.image, heatmap, config, source_shape=result.source_shape,
                                  opacity=shown_opacity(style.opacity, flagged), colormap=style.colormap)
    context = dataclasses.replace(context, created=datetime.now(timezone.utc))
    return image_report_pdf(image_report(name, result, overlay, context, colormap=style.colormap,
                                         heatmap_label=METHODS[style.method]))


def upload_ui(upload: state.Upload, threshold: float, bands: TriageBands, model_version: str) -> None:
    try:
        result = state.classify_upload(upload.data)
        windowable = viewer.windowable_of(upload.data)  # None unless DICOM
    except ImageReadError as error:
        st.error(markdown_literal(f"Could not read {upload.name}: {error}"))
        return
    flagged = result.decision(threshold) == FRACTURED_DECISION
    summary, view = st.columns([1, 2], gap="medium")
    with summary:
        verdict_ui(upload.name, result, threshold, bands, upload.key)
        window = window_ui(windowable, upload.key)
    with view:
        viewer_slot = st.container()  # the image first, its controls right under it (phones stack columns)
        style = heatmap_controls_ui(upload.key, has_boxes=bool(sample_boxes(upload.data)))
        with viewer_slot:
            viewer_ui(upload.data, upload.key, style, flagged, window)
        overlay = state.overlay_png(upload.data, style.method, style.opacity, style.colormap)
        report = verdict_report(upload.name, result.probability_fractured, threshold, method=style.method,
                                model_version=model_version, radiograph_check=result.radiograph_check)
        context = state.report_context(threshold, bands)
        make_pdf = functools.partial(pdf_report, upload.name, result, state.heatmap_of(upload.data, style.method),
                                     state.load_classifier().preprocess_config, style, flagged, context)
        downloads_ui(upload.name, upload.key, style, overlay, report, make_pdf)


def results_ui(uploads: list[state.Upload], threshold: float) -> None:
    classifier = state.load_classifier()
    bands = TriageBands.from_thresholds(state.load_thresholds())
    for upload in uploads:
        try:
            upload_ui(upload, threshold, bands, classifier.version)
        except Exception as error:  # noqa: BLE001 - one card's bug must not take the page; logged
            # Streamlit's rerun and stop are BaseExceptions, so they pass through.
            logger.exception("the card of an upload failed")
            st.error(markdown_literal(f"Could not show {upload.name}: {type(error).__name__}: {error}"))
        st.divider()


def main() -> None:
    heading_ui()
    threshold = threshold_sidebar()
    held = state.uploads(PAGE)
    if held:  # the results first, so that on a phone the verdict is the first thing under the title
        results = st.container()  # above the uploader, but drawn after it: a failing card cannot take it away
        uploads_ui(PAGE, UPLOADER_LABEL)
        # A phone keeps its scroll position when the results appear above: a way back to them.
        st.markdown(f"[↑ Back to the {'verdict' if len(held) == 1 else 'verdicts'}](#{TITLE_ANCHOR})")
        with st.expander("How to read the result", icon=":material/school:"):
            how_to_read_ui(threshold)
        gallery_ui(PAGE)  # collapsed once the page holds images
        with results:
            results_ui(held, threshold)
    else:
        guide = st.container()  # above the uploader, but drawn after it: the uploader comes first
        uploads_ui(PAGE, UPLOADER_LABEL)
        state.start_loading_classifier()  # while the guide and the gallery are drawn
        with guide:
            how_to_read_ui(threshold)
        gallery_ui(PAGE)
        # Loaded once the uploader is on screen (the first visitor picks a file meanwhile), so that
        # the first upload does not wait for TensorFlow.
        state.load_classifier()


if __name__ == "__main__":  # run as a script, which only Streamlit's legacy pages/ mode does
    run_entrypoint()
