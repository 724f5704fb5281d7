"""Bone Fracture Detection — Streamlit entry point.

    streamlit run streamlit_app.py

Pages live in ``pages/``; all image and model logic lives in ``core``. Every page draws the shared
threshold sidebar itself (``pages.shared.threshold_sidebar``).
"""

import streamlit as st

st.set_page_config(page_title="Bone Fracture Detection", page_icon="🦴", layout="wide")
navigation = st.navigation([
    st.Page("pages/classify.py", title="Classify", icon=":material/radiology:", default=True),
    st.Page("pages/batch.py", title="Batch", icon=":material/table_view:"),
    st.Page("pages/performance.py", title="Model performance", icon=":material/monitoring:"),
    st.Page("pages/about.py", title="About", icon=":material/info:"),
])
navigation.run()
