"""Bone Fracture Detection — Streamlit entry point.

    streamlit run streamlit_app.py

Pages live in ``pages/`` and only lay out what ``core`` computes; what they share (the threshold,
the cached model and results) is ``ui/state.py``, the sidebar they all draw ``ui/widgets.py``.
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
