"""Bone Fracture Detection — Streamlit entry point.

    streamlit run streamlit_app.py

Pages live in ``pages/``; all image and model logic lives in ``core``. Every page draws the shared
threshold sidebar itself (``pages.shared.threshold_sidebar``).
"""

import streamlit as st

st.set_page_config(page_title="Bone Fracture Detection", page_icon="🦴", layout="wide")
navigation = st.navigation([
    st.Page("pages/classify.py", title="Classify", icon="🩻", default=True),
    st.Page("pages/batch.py", title="Batch", icon="🗂️"),
    st.Page("pages/performance.py", title="Model performance", icon="📈"),
    st.Page("pages/about.py", title="About", icon="ℹ️"),
])
navigation.run()
