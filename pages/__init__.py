"""The app's pages, one module each, named by its URL path: ``main()`` draws the page, and
``streamlit_app.py`` hands each ``main`` to ``st.Page``. What the pages share is ``ui/``."""
