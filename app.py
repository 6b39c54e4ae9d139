"""Sparse Feature Lab: `streamlit run app.py`.

This file only starts the server: the app itself is `app_ui/navigation.py` (the navigation and
the sidebar) and `pages/`. Run this way, Streamlit serves it as an `st.App`, whose start-up hook
begins importing the heavy libraries (torch, scipy, plotly) while the first browser is still
loading Streamlit's own scripts, so the first page is drawn sooner.
"""

import threading
from contextlib import asynccontextmanager

import streamlit as st


def _warm_imports() -> None:
    import app_ui  # noqa: F401  (torch, safetensors, the models)
    import sparse_models.analysis  # noqa: F401  (scipy.ndimage)
    import sparse_models.plotting  # noqa: F401  (plotly)


@asynccontextmanager
async def lifespan(_app):
    threading.Thread(target=_warm_imports, name="warm-imports", daemon=True).start()
    yield


app = st.App("app_ui/navigation.py", lifespan=lifespan)
