"""Sparse Feature Lab's main script (`streamlit run app.py` serves it; see app.py).

Routes to the pages in `pages/` and draws what every page shares in the sidebar: the run picker
(kept in the URL as `?run=NAME`), the device in use and the background training jobs.

This script lives in `app_ui/`, not beside `pages/`: Streamlit decides once per server, from the
first session's main script, whether the app is an old-style multipage app (a folder called
`pages` beside the main script); if so, a fresh server's first deep link would be served from
that folder without this script's sidebar. Page paths here are relative to this folder.
"""

import streamlit as st

import app_ui
from app_ui.widgets import plain

st.set_page_config(page_title="Sparse Feature Lab", page_icon=":material/grid_on:",
                   layout="wide")

PAGES = [
    st.Page("../pages/overview.py", title="Overview", icon=":material/home:", url_path="",
            default=True),
    st.Page("../pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("../pages/filters.py", title="Filters", icon=":material/grid_view:", url_path="filters"),
    st.Page("../pages/orientation.py", title="Orientation map & pinwheels",
            icon=":material/palette:", url_path="orientation"),
    st.Page("../pages/sparsity.py", title="Sparsity", icon=":material/bar_chart:",
            url_path="sparsity"),
    st.Page("../pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page("../pages/tree.py", title="Tree", icon=":material/account_tree:", url_path="tree"),
    st.Page("../pages/drsae.py", title="DrSAE", icon=":material/neurology:", url_path="drsae"),
    st.Page("../pages/conv.py", title="Convolutional", icon=":material/filter_center_focus:",
            url_path="conv"),
    st.Page("../pages/sweep.py", title="Sweep", icon=":material/tune:", url_path="sweep"),
]

page = st.navigation(PAGES)

with st.sidebar:
    app_ui.run_picker_ui()
    app_ui.jobs_sidebar_ui()

try:
    page.run()
except Exception as exc:  # the last safety net: a message, never a traceback
    st.error(plain(f"This page could not be drawn: {type(exc).__name__}: {exc}"))
