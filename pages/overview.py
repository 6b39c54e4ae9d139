"""Overview: what each model is, one picture of each, and where to go next."""

import streamlit as st

import app_ui
from app_ui import analysis
from app_ui.runs import DEFAULT_RUN_NAMES
from sparse_models.models import available_models, get_entry
from sparse_models.plotting import filter_grid_image, orientation_map_image

PAGE_LINKS = [
    ("../pages/train.py", "Train", ":material/model_training:",
     "change the group structure and the loss weights, train in the background, watch it live"),
    ("../pages/filters.py", "Filters", ":material/grid_view:",
     "every filter in its place on the map; click a unit; replay the self-organisation"),
    ("../pages/orientation.py", "Orientation map", ":material/palette:",
     "orientation domains, pinwheels, column spacing Λ and the density per Λ² against π"),
    ("../pages/sparsity.py", "Sparsity", ":material/bar_chart:",
     "how sparse the codes are, per unit, per sample and per pool; group sparsity vs plain L1"),
    ("../pages/compare.py", "Compare", ":material/compare:",
     "two runs side by side, e.g. 3×3 against 5×5 pools"),
]


def example_run(model: str):
    """The run to picture for a model: the picked run if it is one, else a shipped one, else
    the newest of the user's; None when there is no usable run of that model."""
    chosen = app_ui.selected_run_info()
    candidates = [r for r in app_ui.all_runs() if r.model == model and r.state == "completed"]
    if chosen is not None and chosen.model == model and chosen.state == "completed":
        candidates.insert(0, chosen)
    candidates.sort(key=lambda r: (r is not chosen, not r.shipped,
                                   r.name not in DEFAULT_RUN_NAMES))
    for info in candidates:
        ref, _ = app_ui.open_run(info)
        if ref is not None:
            return ref
    return None


def model_section_ui(name: str) -> None:
    cls = get_entry(name).model_cls
    st.subheader(name.replace("_", " ").capitalize())
    st.markdown(cls.blurb or cls.description)
    if cls.energy_latex:
        st.latex(cls.energy_latex)
    if cls.paper:
        st.caption(f"Follows {cls.paper}.")
    ref = example_run(name)
    if ref is None:
        st.info(f"No finished {name} run yet: train one on the Train page.")
        return
    run = ref.load()
    left, right = st.columns(2)
    with left:
        kind = run.model.default_filter_kind()
        f = analysis.filters(ref.path, ref.stamp, kind)
        rows, cols = run.map_shape
        where = (f"laid out on the {rows}×{cols} unit map"
                 if run.layout.kind in ("map", "sheet") else
                 f"in no particular order ({run.layout.map_shape()[1]})")
        st.image(filter_grid_image(f, run.map_shape, upscale=2),
                 caption=f"{kind.capitalize()} filters of {ref.name}, {where}")
    with right:
        shape, why = analysis.map_info(ref)
        if shape is None:
            st.caption(why)
            if run.layout.kind == "tree":
                st.page_link("../pages/tree.py", label="See its tree: one filter per node",
                             icon=":material/account_tree:")
            return
        pooled = analysis.has_pools(ref)
        o = analysis.orientation(ref.path, ref.stamp)
        p = analysis.pinwheels(ref.path, ref.stamp, 1.0)
        st.markdown("**Orientation map and pinwheels**" if pooled else
                    "**Orientation map: salt and pepper**")
        # A picture, not a chart: the first page must not wait for the Plotly library.
        st.image(orientation_map_image(o["theta"], o["selectivity"], p["pinwheels"]),
                 width=420)
        if pooled:
            st.caption("Hue: preferred orientation; brightness: selectivity; ○ +½ and ■ −½ "
                       "pinwheel centres. Hover and details on the Orientation map page.")
        else:
            st.caption("Without pools the units are in no particular order: neighbours prefer "
                       "unrelated orientations, so the map has no domains (compare above).")


st.title("Sparse Feature Lab")
st.markdown(
    "Train small sparse and **structured**-sparse models on natural-image patches and watch "
    "what they learn. Adding structure to the sparsity penalty (pools of neighbouring units) "
    "makes the features organise themselves the way neurons in visual cortex do. "
    "Pick a run in the sidebar; every page shows that run.")

cols = st.columns(len(PAGE_LINKS))
for col, (path, label, icon, text) in zip(cols, PAGE_LINKS, strict=True):
    with col:
        st.page_link(path, label=label, icon=icon)
        st.caption(text)

for model_name in available_models():  # registration order: the showcase model first
    st.divider()
    model_section_ui(model_name)
