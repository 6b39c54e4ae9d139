"""Compare: any two runs side by side (filters, orientation maps, loss curves, numbers, settings).

For a what-if (one run started from the other's weights: its `config.parent`) the differences
read child − parent, the page says so in words, and a map shows how much each unit's filter
changed. The pinwheel numbers in the table are those of the maps, at the smoothing slider's σ.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.colors
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui.widgets import config_diff, fmt, plain
from sparse_models.plotting import (
    filter_grid_image,
    loss_curves_figure,
    map_heatmap_figure,
    orientation_map_figure,
)
from sparse_models.presets import run_config_sections
from sparse_models.training.runs import RunError, read_run_config

METRICS = [  # (analysis key, label) shown in this order
    ("explained_variance", "explained variance"),
    ("mean_l0", "active units per patch (as on the Sparsity page)"),
    ("hoyer", "Hoyer sparseness"),
    ("dead_fraction", "dead units (fraction)"),
    ("mean_active_pools", "active pools per patch"),
    ("pool_hoyer", "Hoyer sparseness of pool norms"),
    ("mean_selectivity", "mean orientation selectivity"),
    ("envelope_width_px", "filter envelope width (px; smaller: more localised)"),
    ("neighbour_orientation_diff_deg", "neighbour orientation difference (°)"),
    ("pool_similarity_ratio", "filter similarity within / between pools"),
    ("column_spacing", "column spacing Λ"),
    ("pinwheel_count", "pinwheels"),
    ("pinwheel_density", "pinwheels per Λ² (V1: ≈ π)"),
    ("shuffled_pinwheel_density", "… of the shuffled map"),
]
# Which `why_no_*` key of the analysis explains a missing value of each measure.
WHY_KEY = {
    "mean_active_pools": "why_no_pools", "pool_hoyer": "why_no_pools",
    "pool_similarity_ratio": "why_no_pools", "mean_selectivity": "why_no_orientation",
    "neighbour_orientation_diff_deg": "why_no_map", "column_spacing": "why_no_map",
    "pinwheel_count": "why_no_map", "pinwheel_density": "why_no_map",
    "shuffled_pinwheel_density": "why_no_map",
}
PINWHEEL_KEYS = {"pinwheel_count": "count", "pinwheel_density": "density",
                 "shuffled_pinwheel_density": "shuffled_density"}  # analysis.pinwheels' keys
RELATIVE_TOL = 0.05  # differences below 5 % are not highlighted
CHANGED = 0.5  # 1 − r above this: the unit's filter is called changed in the caption


def pick_ui(runs: list, key: str, label: str, default: int) -> object:
    names = [r.name for r in runs]
    name = st.selectbox(label, names, index=default, key=key, bind="query-params")
    return runs[names.index(name)]


def parent_path(info) -> str | None:
    """The path of the run whose weights started this one (from its config file), if any."""
    try:
        return read_run_config(info.path).parent
    except RunError:
        return None


def parent_name(info) -> str | None:
    """The name of the run whose weights started this one, if any."""
    parent = parent_path(info)
    return Path(parent).name if parent else None


def is_parent(parent, child) -> bool:
    """Whether run `child` was started from run `parent`'s weights (a what-if of it)."""
    p = parent_path(child)
    if not p or parent.name == child.name:
        return False
    recorded, here = Path(p).resolve(), Path(parent.path).resolve()
    if recorded.exists():
        return recorded == here
    # The parent's folder has moved since (e.g. the runs folder was copied): its name then,
    # as run names are unique in the picker.
    return recorded.name == here.name


def default_b(runs: list, a) -> int:
    """Run A's parent (a what-if against its origin), else A's newest what-if child, else a
    shipped run of the same model, else another run of the same model, else any other run."""
    parents = [i for i, r in enumerate(runs) if is_parent(r, a)]
    children = [i for i, r in enumerate(runs) if is_parent(a, r)]
    same = [i for i, r in enumerate(runs) if r.model == a.model and r.name != a.name]
    shipped_same = [i for i in same if runs[i].shipped]
    others = [i for i, r in enumerate(runs) if r.name != a.name]
    return (parents or children or shipped_same or same or others or [0])[0]


def _number(v) -> float | None:
    """A finite number, else None (undefined measures are None or NaN)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v if math.isfinite(v) else None


def measures(ref: app_ui.RunRef, smooth: float) -> dict:
    """The run's analysis, with the pinwheel numbers of its map at smoothing σ = `smooth` (the
    numbers drawn on the map), so the table follows the slider as the maps do."""
    out = dict(analysis.summary(ref.path, ref.stamp))
    shape, _ = analysis.map_info(ref)
    if shape is not None and out.get("pinwheel_count") is not None:
        p = analysis.pinwheels(ref.path, ref.stamp, smooth)
        for key, pkey in PINWHEEL_KEYS.items():
            out[key] = p[pkey]
    return out


def metrics_table(sa: dict, sb: dict, name_a: str, name_b: str, child_side: str | None
                  ) -> tuple[pd.io.formats.style.Styler | None, dict[tuple[str, str], list[str]]]:
    """The measures of A and B and their difference: child − parent when `child_side` ("a" or
    "b") says which is the what-if, else B − A. Returns the styled table (None when no measure
    applies to both) and the measures left out: {(run name, why): [labels]}."""
    diff_label = {"a": "child − parent (A − B)", "b": "child − parent (B − A)"}.get(
        child_side, "B − A")
    rows, left_out = [], {}
    for key, label in METRICS:
        va, vb = _number(sa.get(key)), _number(sb.get(key))
        if va is None or vb is None:
            whys = [(name, s.get(WHY_KEY.get(key, "")) or "it could not be measured on it")
                    for name, s, v in ((name_a, sa, va), (name_b, sb, vb)) if v is None]
            if len(whys) == 2 and whys[0][1] == whys[1][1]:
                whys = [("each run", whys[0][1])]
            for name_why in whys:
                left_out.setdefault(name_why, []).append(label)
            continue
        diff = va - vb if child_side == "a" else vb - va
        rows.append({"measure": label, "A: " + name_a: fmt(va), "B: " + name_b: fmt(vb),
                     diff_label: fmt(diff), "_differs": _differs(va, vb)})
    if not rows:
        return None, left_out
    df = pd.DataFrame(rows).set_index("measure")
    flags = df.pop("_differs")

    def highlight(row: pd.Series) -> list[str]:
        style = "background-color: rgba(255, 200, 0, 0.35); font-weight: 600"
        return [style if flags[row.name] else ""] * len(row)

    return df.style.apply(highlight, axis=1), left_out


def _differs(a: float, b: float) -> bool:
    scale = max(abs(a), abs(b))
    return scale > 0 and abs(a - b) / scale > RELATIVE_TOL


def filter_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per unit, 1 − the Pearson correlation of its filter before and after `(N, ...)` each:
    0 the same pattern (whatever its scale), 1 unrelated, 2 inverted; NaN for a flat filter."""
    x = np.asarray(before, dtype=np.float64).reshape(len(before), -1)
    y = np.asarray(after, dtype=np.float64).reshape(len(after), -1)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(norm > 0, (x * y).sum(axis=1) / norm, np.nan)
    return 1.0 - np.clip(r, -1.0, 1.0)


def side_ui(ref: app_ui.RunRef, smooth: float, side: str) -> None:
    run = ref.load()
    st.markdown(f"**{side.upper()}: {plain(ref.name)}**")
    st.caption(plain(app_ui.describe_run(ref.info)))
    kind = run.model.default_filter_kind()
    f = analysis.filters(ref.path, ref.stamp, kind)
    st.image(filter_grid_image(f, run.map_shape, upscale=2), caption=f"{kind} filters")
    shape, why = analysis.map_info(ref)
    if shape is None:
        st.caption(plain(why))
    else:
        o = analysis.orientation(ref.path, ref.stamp)
        p = analysis.pinwheels(ref.path, ref.stamp, smooth)
        st.plotly_chart(orientation_map_figure(
            o["theta"], o["selectivity"], p["pinwheels"], height=380, show_colorbar=False,
            title=f"{p['count']} pinwheels at σ = {smooth:g}"), key=f"compare_map_{side}")
        if (order := analysis.map_order(ref)) is not None:
            st.caption(order)
        elif not analysis.has_pools(ref):
            st.caption("No pools: a salt-and-pepper baseline map.")


def loss_series(ref: app_ui.RunRef) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """`(training, held_out)` series from the run's metrics.jsonl, each {"step": …, term: …}.
    Lines with "split": "test" are the held-out evaluations: kept apart from the training
    curve."""
    train, test = [], []
    for r in analysis.metrics_history(ref.path, ref.stamp):
        if isinstance(r, dict) and isinstance(r.get("step"), int | float):
            (test if r.get("split") == "test" else train).append(r)

    def series(lines: list[dict]) -> dict[str, np.ndarray]:
        if not lines:
            return {}
        terms = [k for k in lines[-1] if k not in ("step", "split", "elapsed_s")
                 and isinstance(lines[-1][k], int | float)]
        out = {"step": np.array([r["step"] for r in lines], dtype=float)}
        for k in terms:
            out[k] = np.array([_number(r.get(k)) if _number(r.get(k)) is not None else np.nan
                               for r in lines], dtype=float)
        return out

    return series(train), series(test)


def loss_curves_ui(refs: dict[str, app_ui.RunRef]) -> None:
    """The two runs' loss curves side by side, on the same axes."""
    series = {side: loss_series(ref) for side, ref in refs.items()}
    values = []  # everything drawn: the training terms and the held-out loss
    for train, test in series.values():
        values += [v for k, v in train.items() if k != "step"]
        values += [test["loss"]] if "loss" in test else []
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
    steps = [d["step"] for train, test in series.values() for d in (train, test) if d]
    x_max = max((float(s.max()) for s in steps if s.size), default=1.0)
    # One colour per term name on both charts (the total first), so a term reads the same
    # on both sides even when the two models' loss terms differ.
    names = ["loss"] + [k for train, _ in series.values() for k in train
                        if k not in ("step", "loss")]
    palette = plotly.colors.qualitative.D3
    color = {k: palette[i % len(palette)] for i, k in enumerate(dict.fromkeys(names))}
    cols = st.columns(2)
    for (side, ref), col in zip(refs.items(), cols, strict=True):
        train, test = series[side]
        with col:
            if not train:
                st.caption(plain(f"{ref.name} has no logged training steps "
                                 f"(no metrics.jsonl lines)."))
                continue
            fig = loss_curves_figure(train["step"], {k: v for k, v in train.items()
                                                     if k != "step"},
                                     title=html.escape(f"{side.upper()}: {ref.name}"))
            for trace in fig.data:
                trace.line.color = color.get(trace.name)
            if test and "loss" in test:
                fig.add_scatter(x=test["step"], y=test["loss"], mode="lines+markers",
                                name="held-out loss",
                                line=dict(dash="dash", width=2, color=color["loss"]))
            fig.update_xaxes(range=[0, x_max * 1.02])
            # The legends sit in a fixed bottom margin, so both plots get the same height
            # however many loss terms (and a held-out line) each run has.
            fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=110),
                              legend=dict(orientation="h", yref="container", y=0.0,
                                          yanchor="bottom", x=0, xanchor="left"))
            if finite.size:
                lo, hi = float(finite.min()), float(finite.max())
                pad = 0.05 * (hi - lo or abs(hi) or 1.0)
                fig.update_yaxes(range=[lo - pad, hi + pad])
            st.plotly_chart(fig, key=f"compare_loss_{side}")


def relation_ui(a, b) -> str | None:
    """Say in words how the two runs are related and how long each trained; returns which side
    ("a" or "b") is the what-if child of the other, if either is."""
    child = "a" if is_parent(b, a) else "b" if is_parent(a, b) else None
    lines = []
    if child is not None:
        c, p = (a, b) if child == "a" else (b, a)
        c_side, p_side = (child.upper(), "B" if child == "a" else "A")
        lines.append(f"**{c_side} ({plain(c.name)}) was started from the weights of "
                     f"{p_side} ({plain(p.name)})**: it is a what-if of it, and trained "
                     f"{c.steps} steps of its own from there. Differences below read "
                     f"child − parent ({c_side} − {p_side}).")
    else:
        pa, pb = parent_name(a), parent_name(b)
        if pa and pa == pb:
            lines.append(f"Both runs were started from the weights of {plain(pa)}.")
        else:
            for info, side, p in ((a, "A", pa), (b, "B", pb)):
                if p:
                    lines.append(f"{side} ({plain(info.name)}) was started from the weights "
                                 f"of {plain(p)}, not from the other run.")
    if a.steps != b.steps:
        lines.append(f"They trained for **different numbers of steps**: A ({plain(a.name)}) "
                     f"{a.steps}, B ({plain(b.name)}) {b.steps}; some differences may come "
                     f"from training longer rather than from the settings.")
    if lines:
        st.info("\n\n".join(lines))
    return child


def change_map_ui(parent: app_ui.RunRef, child: app_ui.RunRef) -> None:
    """How much each unit's filter changed from the parent to the child (same filter shapes)."""
    kind = child.load().model.default_filter_kind()
    before = analysis.filters(parent.path, parent.stamp, kind)
    after = analysis.filters(child.path, child.stamp, kind)
    if before.shape != after.shape:
        st.caption(plain(f"No change map: {parent.name}'s {kind} filters have shape "
                         f"{before.shape} and {child.name}'s {after.shape}."))
        return
    change = filter_change(before, after)
    rows, cols = child.load().map_shape
    if rows * cols != change.size:
        st.caption(plain(f"No change map: {change.size} units do not fill a {rows}×{cols} grid."))
        return
    st.subheader("How much each unit's filter changed")
    ok = change[np.isfinite(change)]
    top = max(float(ok.max()) if ok.size else 1.0, 0.1)
    left, right = st.columns([3, 2], vertical_alignment="center")
    with left:
        st.plotly_chart(map_heatmap_figure(
            change.reshape(rows, cols), title=html.escape(f"{parent.name} → {child.name}"),
            zmin=0.0, zmax=top, value_label="1 − r", height=380), key="compare_change_map")
    has_map = analysis.map_info(child)[0] is not None
    where = ("each unit in its place on the map" if has_map else
             "units in index order (unit i in cell i): this model's units have no map order")
    with right:
        st.caption(plain(
            f"Per unit, 1 − r, where r is the correlation between its {kind} filter in "
            f"{parent.name} (parent) and in {child.name} (child): 0 the same pattern (a change "
            f"of scale alone does not count), 1 unrelated, 2 inverted; {where}. Colours run "
            f"from 0 to {fmt(top)}. ") +
            (f"Median {fmt(float(np.median(ok)))}, largest {fmt(float(ok.max()))}; "
             f"{int((ok > CHANGED).sum())} of {change.size} units changed by more than "
             f"{CHANGED}." if ok.size else "Every filter is flat: no correlation to measure."))


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
                       bind="query-params", help="Pinwheel smoothing for both maps and for the "
                       "pinwheel numbers in the table.")
if a.name == b.name:
    st.warning("Run A and run B are the same run: pick two different runs.")

ref_a, err_a = app_ui.open_run(a)
ref_b, err_b = app_ui.open_run(b)
both = ref_a is not None and ref_b is not None and a.name != b.name
child_side = relation_ui(a, b) if both else None

left, right = st.columns(2)
for side, col, ref, err in (("a", left, ref_a, err_a), ("b", right, ref_b, err_b)):
    with col:
        if ref is None:
            st.error(plain(err))
        else:
            side_ui(ref, smooth, side)

if both:
    refs = {"a": ref_a, "b": ref_b}
    st.subheader("Training loss")
    loss_curves_ui(refs)
    st.caption("Each run's loss terms on its training batches, on the same axes; steps count "
               "from each run's own start (a what-if starts from its parent's final weights)."
               " Held-out evaluations, where the data has a held-out split, are the dashed "
               "line, never part of the training curve.")

    if child_side is not None:
        child_ref, parent_ref = (ref_a, ref_b) if child_side == "a" else (ref_b, ref_a)
        change_map_ui(parent_ref, child_ref)

    st.subheader("Numbers")
    table, left_out = metrics_table(measures(ref_a, smooth), measures(ref_b, smooth),
                                    a.name, b.name, child_side)
    if table is not None:
        st.dataframe(table, key="compare_metrics", height=36 * (len(table.data) + 1) + 4)
    shown = [] if table is None else list(table.data.index)
    st.caption("Highlighted: the two runs differ by more than 5 %. Measures on each run's own "
               "training patches" + (
                   f"; pinwheel numbers at σ = {smooth:g}, the slider's, as on the maps above."
                   if "pinwheels" in shown else "."))
    if left_out:
        st.caption("Left out of the table, as they do not apply to both runs:\n" + "\n".join(
            f"- {plain(', '.join(labels))} — {plain(name)}: {plain(why)}."
            for (name, why), labels in left_out.items()))

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
