"""Bone Fracture Detection — Streamlit entry point.

    streamlit run streamlit_app.py

Each page is a module of ``pages/`` whose ``main()`` only lays out what ``core`` computes; what
the pages share (the threshold, the cached model and results, the sidebar) is ``ui/``. The pages
are functions handed to ``st.Page``, so Streamlit runs this file, then the page the URL names.
"""

import streamlit as st

from pages import about, batch, classify, performance

st.set_page_config(page_title="Bone Fracture Detection", page_icon="🦴", layout="wide")
# Each url_path is its module's file name: Streamlit's legacy pages/ mode, on for a fresh server's
# first run, finds a deep link's page by that name (ui/entrypoint.py).
navigation = st.navigation([
    st.Page(classify.main, title="Classify", icon=":material/radiology:", url_path="classify", default=True),
    st.Page(batch.main, title="Batch", icon=":material/table_view:", url_path="batch"),
    st.Page(performance.main, title="Model performance", icon=":material/monitoring:", url_path="performance"),
    st.Page(about.main, title="About", icon=":material/info:", url_path="about"),
])
navigation.run()
