"""Sparse Feature Lab: `streamlit run app.py`.

This file only starts the server: the app itself is `app_ui/navigation.py` (the navigation and
the sidebar) and `pages/`. Run this way, Streamlit serves it as an `st.App`, whose start-up hook
begins importing the heavy libraries (torch, scipy, plotly) while the first browser is still
loading Streamlit's own scripts, so the first page is drawn sooner.
"""

import os
import threading
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

# DNS rebinding: a web page elsewhere can make a browser on this machine send requests to
# 127.0.0.1 under the page's own host name. Only these Host headers are served; add the names
# people use to reach the app from other machines in $SPARSE_LAB_ALLOWED_HOSTS (comma-separated,
# e.g. "lab.example.org,192.168.1.20").
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "::1"] + [
    h.strip() for h in os.environ.get("SPARSE_LAB_ALLOWED_HOSTS", "").split(",") if h.strip()]


def _warm_imports() -> None:
    import app_ui  # noqa: F401  (torch, safetensors, the models)
    import sparse_models.analysis  # noqa: F401  (scipy.ndimage)
    import sparse_models.plotting  # noqa: F401  (plotly)


@asynccontextmanager
async def lifespan(_app):
    threading.Thread(target=_warm_imports, name="warm-imports", daemon=True).start()
    yield


app = st.App("app_ui/navigation.py", lifespan=lifespan,
             middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=ALLOWED_HOSTS)])
