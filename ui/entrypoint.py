"""The app's entrypoint, for a page file that Streamlit runs on its own.

``streamlit_app.py`` is the app: its ``st.navigation`` lists the pages (the ``main`` functions of
the modules in ``pages/``) and runs the one the URL names. Streamlit's legacy multipage mode is on
while a ``pages/`` folder stands beside the entrypoint, until some session calls
``st.navigation``: in that mode a deep link such as ``/batch`` on a fresh server runs
``pages/batch.py`` alone, as a script. A page module hands such a run to the entrypoint, whose
``st.navigation`` turns the legacy mode off for every session and opens that same page (each page
module is named by its URL path, so the legacy mode finds the one the link names).
"""

import runpy

from core.config import PROJECT_DIR

ENTRYPOINT = PROJECT_DIR / "streamlit_app.py"


def run_entrypoint() -> None:
    """Runs ``streamlit_app.py`` as Streamlit would: the app's navigation and the page the URL names."""
    runpy.run_path(str(ENTRYPOINT), run_name="__main__")
