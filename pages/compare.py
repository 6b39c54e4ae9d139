"""Compare: any two runs side by side (filters, orientation maps, numbers, settings)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui.widgets import config_diff, fmt
from sparse_models.plotting import filter_grid_image, orientation_map_figure
from sparse_models.presets import run_config_sections
from sparse_models.training.runs import RunError, read_run_config

METRICS = [  # (analysis key, label, higher is ...) shown in this order
    ("explained_variance", "explained variance"),
    ("mean_l0_fraction", "active units (fraction)"),
    ("hoyer", "Hoyer sparseness"),
    ("dead_fraction", "dead units (fraction)"),
    ("mean_active_pools", "active pools per patch"),
    ("pool_hoyer", "Hoyer sparseness of pool norms"),
    ("mean_selectivity", "mean orientation selectivity"),
    ("neighbour_orientation_diff_deg", "neighbour orientation difference (°)"),
    ("pool_similarity_ratio", "filter similarity within / between pools"),
    ("column_spacing", "column spacing Λ"),
    ("pinwheel_count", "pinwheels"),
    ("pinwheel_density", "pinwheels per Λ² (V1: ≈ π)"),
    ("shuffled_pinwheel_density", "… of the shuffled map"),
]
RELATIVE_TOL = 0.05  # differences below 5 % are not highlighted


def pick_ui(runs: list, key: str, label: str, default: int) -> object:
    names = [r.name for r in runs]
    name = st.selectbox(label, names, index=default, key=key, bind="query-params")
    return runs[names.index(name)]


def default_b(runs: list, a) -> int:
    """Run A's parent (a what-if against its origin), else A's newest what-if child, else a
    shipped run of the same model, else another run of the same model, else any other run."""
    names = [r.name for r in runs]
    parents = {r.name: parent_name(r) for r in runs}
    if parents.get(a.name) in names and parents[a.name] != a.name:
        return names.index(parents[a.name])
    children = [i for i, r in enumerate(runs) if parents.get(r.name) == a.name]
    same = [i for i, r in enumerate(runs) if r.model == a.model and r.name != a.name]
    shipped_same = [i for i in same if runs[i].shipped]
    others = [i for i, r in enumerate(runs) if r.name != a.name]
    return (children or shipped_same or same or others or [0])[0]


def parent_name(info) -> str | None:
    """The name of the run whose weights started this one (from its config file), if any."""
    try:
        parent = read_run_config(info.path).parent
    except RunError:
        return None
    return Path(parent).name if parent else None


def metrics_table(sa: dict, sb: dict, name_a: str, name_b: str) -> pd.io.formats.style.Styler:
    rows = []
    for key, label in METRICS:
        va, vb = sa.get(key), sb.get(key)
        if va is None and vb is None:
            continue
        diff = (vb - va) if isinstance(va, int | float) and isinstance(vb, int | float) else None
        rows.append({"measure": label, name_a: fmt(va), name_b: fmt(vb),
                     "B − A": fmt(diff) if diff is not None else "—",
                     "_differs": _differs(va, vb)})
    df = pd.DataFrame(rows).set_index("measure")
    flags = df.pop("_differs")

    def highlight(row: pd.Series) -> list[str]:
        style = "background-color: rgba(255, 200, 0, 0.35); font-weight: 600"
        return [style if flags[row.name] else ""] * len(row)

    return df.style.apply(highlight, axis=1)


def _differs(a, b) -> bool:
    if not (isinstance(a, int | float) and isinstance(b, int | float)):
        return a != b
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    scale = max(abs(a), abs(b))
    return scale > 0 and abs(a - b) / scale > RELATIVE_TOL


def side_ui(ref: app_ui.RunRef, smooth: float, side: str) -> dict:
    run = ref.load()
    st.markdown(f"**{ref.name}**")
    st.caption(app_ui.describe_run(ref.info))
    kind = run.model.default_filter_kind()
    f = analysis.filters(ref.path, ref.stamp, kind)
    st.image(filter_grid_image(f, run.map_shape, upscale=2), caption=f"{kind} filters")
    shape, why = analysis.map_info(ref)
    if shape is None:
        st.caption(why)
    else:
        o = analysis.orientation(ref.path, ref.stamp)
        p = analysis.pinwheels(ref.path, ref.stamp, smooth)
        st.plotly_chart(orientation_map_figure(o["theta"], o["selectivity"], p["pinwheels"],
                                               height=380, show_colorbar=False),
                        key=f"compare_map_{side}")
        if not analysis.has_pools(ref):
            st.caption("No pools: a salt-and-pepper baseline map.")
    return analysis.summary(ref.path, ref.stamp)


st.title("Compare")
runs = [r for r in app_ui.all_runs() if r.state in ("completed", "stopped", "interrupted",
                                                   "failed", "running")]
if len(runs) < 2:
    st.info("Comparing needs two runs. Train a what-if on the Train page (e.g. start from the "
            "current run's weights with a different pool size), then come back.")
    st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

current = app_ui.selected_run_info()
names = [r.name for r in runs]
c1, c2, c3 = st.columns([2, 2, 1])
with c1:
    a = pick_ui(runs, "compare_a", "Run A",
                names.index(current.name) if current is not None and current.name in names else 0)
with c2:
    b = pick_ui(runs, "compare_b", "Run B", default_b(runs, a))
with c3:
    smooth = st.slider("Smoothing σ", 0.0, 3.0, 1.0, 0.25, key="compare_smooth",
                       bind="query-params", help="Pinwheel smoothing for both maps.")
if a.name == b.name:
    st.warning("Run A and run B are the same run: pick two different runs.")

ref_a, err_a = app_ui.open_run(a)
ref_b, err_b = app_ui.open_run(b)
left, right = st.columns(2)
summaries = {}
for side, col, ref, err in (("a", left, ref_a, err_a), ("b", right, ref_b, err_b)):
    with col:
        if ref is None:
            st.error(err)
        else:
            summaries[side] = side_ui(ref, smooth, side)

if ref_a is not None and ref_b is not None and a.name != b.name:
    st.subheader("Numbers")
    table = metrics_table(summaries["a"], summaries["b"], "A: " + a.name, "B: " + b.name)
    st.dataframe(table, key="compare_metrics", height=36 * (len(table.data) + 1) + 4)
    st.caption("Highlighted: the two runs differ by more than 5 %. Measures from the runs' "
               "own training patches (5000), pinwheels at σ = 1.")
    st.subheader("Settings that differ")
    diff = config_diff(run_config_sections(ref_a.load().config),
                       run_config_sections(ref_b.load().config))
    diff = {k: v for k, v in diff.items() if k not in ("train.device", "train.threads")}
    if diff:
        st.dataframe(pd.DataFrame([{"setting": k, "A": fmt(va), "B": fmt(vb)}
                                   for k, (va, vb) in diff.items()]).set_index("setting"),
                     key="compare_settings")
    else:
        st.caption("The two runs were trained with the same settings.")
