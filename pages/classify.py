"""Classify: drop X-rays, see each verdict, probability and heatmap at the current threshold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core.classifier import ImageResult
from core.export import VERDICT_TEXT, verdict_report
from core.heatmaps import DEFAULT_METHOD, METHODS, SLOW_METHODS
from core.imaging import SUPPORTED_FORMATS, ImageReadError
from core.thresholds import FRACTURED_DECISION
from pages import state
from pages.widgets import markdown_literal, threshold_sidebar

COLORMAPS = ("jet", "inferno", "viridis", "magma", "turbo")


@dataclass(frozen=True)
class HeatmapStyle:
    method: str = DEFAULT_METHOD  # a key of core.heatmaps.METHODS
    opacity: float = 0.4
    colormap: str = COLORMAPS[0]


def heading_ui() -> None:
    st.title("Bone fracture detection")
    st.caption("Research demo — not a medical device. Do not use for diagnosis.")


def heatmap_style_ui() -> HeatmapStyle:
    controls = st.columns(3)
    method = controls[0].selectbox("Heatmap method", list(METHODS), format_func=METHODS.get,
                                   help="All explain the 'fractured' output. Score-CAM and SmoothGrad are "
                                        "slower on CPU (about 0.2 s and 1 s per image).")
    opacity = controls[1].slider("Heatmap opacity", 0.0, 1.0, HeatmapStyle.opacity, 0.05)
    colormap = controls[2].selectbox("Colormap", COLORMAPS)
    return HeatmapStyle(method, opacity, colormap)


PAGE = "classify"  # this page's list of uploads in pages.state


def uploads_ui() -> list[state.Upload]:
    """The session's images on this page: every file dropped here, kept across page switches."""
    # No extension filter: DICOM often comes without one, and the reader decides by content.
    st.file_uploader(f"Drop one or more X-rays ({', '.join(SUPPORTED_FORMATS)})", accept_multiple_files=True,
                     **state.uploader_kwargs(PAGE))
    held = state.uploads(PAGE)
    if held:
        st.button(f"Clear all {len(held)} images", on_click=state.clear_uploads, args=(PAGE,), icon=":material/delete:")
    return held


def verdict_ui(name: str, result: ImageResult, threshold: float) -> None:
    decision = result.decision(threshold)
    headline = (f"**{VERDICT_TEXT[decision]}** — {markdown_literal(name)}: "
                f"P(fractured) = {result.probability_fractured:.3f} (threshold {threshold:.3f})")
    (st.error if decision == FRACTURED_DECISION else st.success)(headline)
    check = result.radiograph_check
    if not check.looks_like_radiograph:
        st.warning(check.warning(), icon=":material/warning:")
    elif check.unlike_training_data:
        st.info(check.caution(), icon=":material/info:")


def images_ui(data: bytes, style: HeatmapStyle) -> bytes:
    """The X-ray beside its overlay; returns the overlay's PNG bytes (offered for download)."""
    slow = style.method in SLOW_METHODS
    label = METHODS[style.method]
    with st.spinner(f"Computing {label}{' (slow on CPU)' if slow else ''}…", show_time=slow):
        overlay = state.overlay_png(data, style.method, style.opacity, style.colormap)
    left, right = st.columns(2)
    left.image(state.xray_png(data), caption="X-ray", width="stretch")
    right.image(overlay, caption=f"{label} for 'fractured'", width="stretch")
    return overlay


def downloads_ui(name: str, file_id: str, method: str, overlay: bytes, report: dict) -> None:
    stem = Path(name).stem
    left, right = st.columns(2)
    left.download_button("Overlay (PNG)", overlay, f"{stem}_{method}.png", "image/png", key=f"png-{file_id}")
    right.download_button("Report (JSON)", json.dumps(report, indent=2), f"{stem}_report.json",
                          "application/json", key=f"json-{file_id}")


def upload_ui(name: str, data: bytes, file_id: str, style: HeatmapStyle, threshold: float,
              model_version: str) -> None:
    st.divider()
    try:
        result = state.classify_upload(data)
    except ImageReadError as error:
        st.error(markdown_literal(f"Could not read {name}: {error}"))
        return
    verdict_ui(name, result, threshold)
    overlay = images_ui(data, style)
    report = verdict_report(name, result.probability_fractured, threshold, method=style.method,
                            model_version=model_version, radiograph_check=result.radiograph_check)
    downloads_ui(name, file_id, style.method, overlay, report)


def main() -> None:
    state.use_app_navigation()
    heading_ui()
    threshold = threshold_sidebar()
    style = heatmap_style_ui()
    uploads = uploads_ui()
    # Loaded once the uploader is on screen (the first visitor picks a file meanwhile), and loaded
    # even before any upload so that the first one does not wait for TensorFlow.
    classifier = state.load_classifier()
    for upload in uploads:
        upload_ui(upload.name, upload.data, upload.key, style, threshold, classifier.version)


main()
