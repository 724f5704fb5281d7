"""Classify page: upload an X-ray, see the fracture probability, verdict and Grad-CAM overlay.

A first, deliberately small page; the full app (threshold costs, heatmap methods, batch,
performance and about pages) is tracked in its own issue.
"""

import streamlit as st

from core import FractureClassifier, GradCam, ImageReadError, SUPPORTED_FORMATS, decide
from core import heatmap_to_image, overlay_heatmap

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "gif", "dcm"]


@st.cache_resource(show_spinner="Loading the model…")
def load_models():
    classifier = FractureClassifier.load()
    return classifier, GradCam(classifier.model, classifier.metadata["cam_layer"])


classifier, explainer = load_models()
st.title("Bone fracture detection")
st.caption("Research demo — not a medical device. Do not use for diagnosis.")
preset = st.sidebar.selectbox("Threshold preset", list(classifier.thresholds), index=1)
threshold = st.sidebar.slider("Decision threshold", 0.0, 1.0, classifier.thresholds[preset], 0.001)
upload = st.file_uploader(f"Drop an X-ray ({', '.join(SUPPORTED_FORMATS)})", type=UPLOAD_TYPES)
if upload is not None:
    try:
        result = classifier.classify(upload.getvalue())
    except ImageReadError as error:
        st.error(f"Could not read {upload.name}: {error}")
        st.stop()
    heatmap = heatmap_to_image(explainer(result.model_input[None])[0], result.image.shape,
                               classifier.preprocess_config)
    verdict = decide(result.probability_fractured, threshold)
    message = f"P(fractured) = {result.probability_fractured:.3f} at threshold {threshold:.3f}"
    if verdict == "fractured":
        st.error(f"**Fracture suspected** — {message}")
    else:
        st.success(f"**No fracture detected** — {message}")
    left, right = st.columns(2)
    left.image(result.image, caption="X-ray", clamp=True, width="stretch")
    right.image(overlay_heatmap(result.image, heatmap), caption="Grad-CAM (fractured)",
                width="stretch")
