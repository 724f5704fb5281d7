"""Classify: drop X-rays, see each verdict, probability and heatmap at the current threshold."""

import json
from pathlib import Path

import streamlit as st

from core import ImageReadError, SUPPORTED_FORMATS, decide
from core.inference import VERDICT_TEXT, verdict_report
from core.cam_methods import METHODS, SLOW_METHODS
from pages.shared import (analyse_upload, load_classifier, markdown_literal, overlay_png, threshold_sidebar,
                          use_app_navigation, xray_png)

COLORMAPS = ("jet", "inferno", "viridis", "magma", "turbo")

use_app_navigation()
st.title("Bone fracture detection")
st.caption("Research demo — not a medical device. Do not use for diagnosis.")
threshold = threshold_sidebar()

controls = st.columns(3)
method = controls[0].selectbox("Heatmap method", list(METHODS), format_func=METHODS.get,
                               help="All explain the 'fractured' output. Score-CAM and SmoothGrad are "
                                    "slower on CPU (about 0.2 s and 1 s per image).")
opacity = controls[1].slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05)
colormap = controls[2].selectbox("Colormap", COLORMAPS)
# No extension filter: DICOM often comes without one, and the reader decides by content.
uploads = st.file_uploader(f"Drop one or more X-rays ({', '.join(SUPPORTED_FORMATS)})",
                           accept_multiple_files=True)
# Loaded once the uploader is on screen (the first visitor picks a file meanwhile), and loaded even
# before any upload so that the first one does not wait for TensorFlow.
classifier = load_classifier()

for upload in uploads or []:
    st.divider()
    try:
        probability, _, _, check, _ = analyse_upload(upload.getvalue())
    except ImageReadError as error:
        st.error(markdown_literal(f"Could not read {upload.name}: {error}"))
        continue
    decision = decide(probability, threshold)
    headline = f"**{VERDICT_TEXT[decision]}** — {markdown_literal(upload.name)}: P(fractured) = {probability:.3f} " \
               f"(threshold {threshold:.3f})"
    (st.error if decision == "fractured" else st.success)(headline)
    if not check.looks_like_radiograph:
        st.warning(check.warning(), icon=":material/warning:")
    slow = method in SLOW_METHODS
    with st.spinner(f"Computing {METHODS[method]}{' (slow on CPU)' if slow else ''}…", show_time=slow):
        overlay = overlay_png(upload.getvalue(), method, opacity, colormap)
    left, right = st.columns(2)
    left.image(xray_png(upload.getvalue()), caption="X-ray", width="stretch")
    right.image(overlay, caption=f"{METHODS[method]} for 'fractured'", width="stretch")
    report = verdict_report(upload.name, probability, threshold, method=method, model_version=classifier.version,
                            radiograph_check=check)
    stem = Path(upload.name).stem
    downloads = st.columns(2)
    downloads[0].download_button("Overlay (PNG)", overlay, f"{stem}_{method}.png", "image/png",
                                 key=f"png-{upload.file_id}")
    downloads[1].download_button("Report (JSON)", json.dumps(report, indent=2), f"{stem}_report.json",
                                 "application/json", key=f"json-{upload.file_id}")
