"""Sparsity: how sparse the codes are per sample, per unit and per pool; group sparsity vs L1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui.widgets import fmt
from sparse_models.analysis import (
    activation_histogram,
    active_count,
    firing_frequency,
    group_norms,
)
from sparse_models.analysis.sparsity import (
    ACTIVITY_RULE,
    ACTIVITY_SAMPLES,
    CONV_ACTIVITY_RULE,
    activity_threshold,
    pool_clustering,
    sparsity_summary,
)
from sparse_models.models import available_models, get_entry
from sparse_models.models.base import SparseModel
from sparse_models.plotting import (
    histogram_figure,
    map_heatmap_figure,
    overlay_histograms_figure,
    sorted_bar_figure,
)
from sparse_models.training.runs import RunError, read_run_config


def units_text(mean: float | None, k: int) -> str:
    """A mean count of units (or pools) out of k, the one way the page writes it: '92.0 of 256'."""
    return "—" if mean is None else f"{mean:.1f} of {k}"


def percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


ACTIVE_UNITS = "active units per patch"  # the comparison table's row for the page's metric


def code_stats(z: np.ndarray, P: np.ndarray | None, threshold: float) -> dict[str, str]:
    """The comparison table's column for one run: its codes z (B, K) measured at its own
    activity threshold, by `sparsity_summary` as the page's metrics and the run's analysis."""
    s = sparsity_summary(z, P, threshold)
    K = s["n_units"]
    out = {ACTIVE_UNITS: units_text(s["mean_l0"], K),
           "patches with no active unit": percent(s["zero_code_fraction"]),
           "Hoyer sparseness of units": fmt(s["hoyer"], 2),
           "dead units": f"{round(s['dead_fraction'] * K)} of {K}",
           "activity threshold (10⁻³ × the run's largest |z|)": fmt(s["threshold"], 2)}
    if P is not None:
        c = pool_clustering(z, P, threshold)
        J = P.shape[0]
        out["active pools per patch"] = units_text(c["active_pools"], J)
        out["… if those units were scattered at random"] = units_text(c["scattered_pools"], J)
        out["clustering: active / scattered pools (< 1: clustered)"] = fmt(c["ratio"])
        out["Hoyer sparseness of pool norms"] = fmt(s["pool_hoyer"], 2)
    return out


def own_codes(path: str, stamp: float, data_path: str | None = None,
              data_stamp: float = 0.0) -> np.ndarray:
    """Codes of a run on the first ACTIVITY_SAMPLES training patches of `data_path`'s run (default:
    its own): the fixed samples of the activity rule, from the app's shared cache."""
    if data_path is None:
        return analysis.codes(path, stamp)
    return analysis.codes(path, stamp, data_path, data_stamp)


def run_threshold(ref: app_ui.RunRef) -> float:
    """A run's own activity threshold, from its codes on its own fixed patches."""
    return activity_threshold(own_codes(ref.path, ref.stamp))


def legend_below(fig):
    """The legend under the x axis, clear of the title (two runs' names are long)."""
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=90),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0, xanchor="left"))
    return fig


def l0_label(edges: np.ndarray) -> str:
    w = int(edges[1] - edges[0])
    return "L0 (active units)" + ("" if w == 1 else f", bins of {w}")


def percent_axis(fig, title: str, log: bool = False):
    """A y axis of percentages, written as plain numbers (no SI prefixes such as 'μ')."""
    fig.update_yaxes(title_text=title, ticksuffix=" %", exponentformat="none")
    if not log:
        fig.update_yaxes(rangemode="tozero")
    return fig


def _has_pools(model: str) -> bool:
    return get_entry(model).model_cls.pools is not SparseModel.pools


def comparison_candidates(ref: app_ui.RunRef) -> list:
    """Finished runs that can encode this run's patches and differ in having pools or not.
    Only their config files are read here; the chosen one is opened later."""
    me = ref.load()
    shape = tuple(me.config.data.input_shape)
    out, n_units = [], {}
    for info in app_ui.all_runs():
        if info.name == ref.name or info.state != "completed" or not info.model:
            continue
        if _has_pools(info.model) == _has_pools(me.config.model):
            continue
        try:
            cfg = read_run_config(info.path)
        except RunError:
            continue
        if tuple(cfg.data.input_shape) != shape:
            continue
        out.append(info)
        n_units[info.name] = _n_units(cfg)
    # runs with as many units as this one first: then the same pools apply to both codes
    out.sort(key=lambda r: (n_units[r.name] != me.model.n_units, not r.shipped, r.name))
    return out


def _n_units(cfg) -> int | None:
    """Units of a run's model from its config, for ordering only (None when it can't be told)."""
    try:
        return int(cfg.model_cls(cfg.model_config).n_units)
    except Exception:  # ordering only: a model that cannot be built sorts last
        return None


def group_vs_l1_ui(ref: app_ui.RunRef, z: np.ndarray) -> None:
    st.subheader("Group sparsity vs plain L1, on the same patches")
    st.markdown(
        "Plain L1 (sparse coding) penalises every unit on its own, so the active units are "
        "scattered over the map. The group penalty Σⱼ‖z_Pⱼ‖₂ is cheap for a unit whose pool "
        "is already active, so active units **cluster in pools**: for the same number of "
        "active units, fewer pools are switched on. Below, both models encode the same "
        "patches and are measured with the same pools; *clustering* compares the pools "
        "switched on with those the same active units would switch on if they were scattered "
        "over the map at random.")
    candidates = comparison_candidates(ref)
    if not candidates:
        pooled = analysis.has_pools(ref)
        kinds = [m for m in available_models() if _has_pools(m) != pooled]
        example = f" (e.g. {', '.join(kinds)})" if kinds else ""
        st.info("There is no finished run to compare with that " + (
            "uses plain L1" if pooled else "uses group sparsity") + example +
            " on patches of the same size. Train one on the Train page (same patch size), "
            "then come back.")
        st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    names = [c.name for c in candidates]
    other_name = st.selectbox("Compare with", names, key="sparsity_other", bind="query-params")
    other, error = app_ui.open_run(candidates[names.index(other_name)])
    if other is None:
        st.error(error)
        return
    pooled_ref, plain_ref = (ref, other) if analysis.has_pools(ref) else (other, ref)
    P = analysis.pool_matrix(pooled_ref.path, pooled_ref.stamp)
    me, them = ref.load(), other.load()
    if them.config.data == me.config.data:  # the same patches: its own codes are those
        z_other = own_codes(other.path, other.stamp)
    else:
        z_other = own_codes(other.path, other.stamp, ref.path, ref.stamp)
    if P is not None and z_other.shape[1] != z.shape[1]:
        st.caption(f"{other.name} has {z_other.shape[1]} units and {ref.name} has "
                   f"{z.shape[1]}: the same pools cannot be applied to both, so pool "
                   f"statistics are left out. Pick a run with as many units to see them.")
        P = None
    # each run keeps its own threshold (the rule's: from its own patches), so each column reads
    # as that run's own Sparsity page does
    t_ref, t_other = activity_threshold(z), run_threshold(other)
    z_pooled, z_plain = (z, z_other) if pooled_ref is ref else (z_other, z)
    t_pooled, t_plain = (t_ref, t_other) if pooled_ref is ref else (t_other, t_ref)
    a, b = code_stats(z_pooled, P, t_pooled), code_stats(z_plain, P, t_plain)
    name_a, name_b = f"{pooled_ref.name} (group)", f"{plain_ref.name} (L1)"
    st.dataframe(pd.DataFrame({name_a: a, name_b: b}), key="sparsity_compare_table")
    st.caption(f"Both on the same {z.shape[0]} patches of {ref.name}; each run measured at its "
               f"own activity threshold ({ACTIVITY_RULE}), so the {ref.name} column repeats the "
               f"numbers at the top of this page.")
    l0_pooled, l0_plain = active_count(z_pooled, t_pooled), active_count(z_plain, t_plain)
    c1, c2 = st.columns(2)
    if P is not None:
        g_pooled, g_plain = group_norms(z_pooled, P), group_norms(z_plain, P)
        bins = np.linspace(0, max(g_pooled.max(), g_plain.max()) or 1.0, 41)
        fig = overlay_histograms_figure(
            {name_a: _percent_hist(g_pooled, bins), name_b: _percent_hist(g_plain, bins)},
            title="Pool norms, same pools", x_label="‖z_P‖₂", log_y=True)
        c1.plotly_chart(legend_below(percent_axis(fig, "% of (patch, pool) pairs", log=True)),
                        key="sparsity_cmp_pools")
    lb = l0_bins(int(max(l0_pooled.max(), l0_plain.max(), 1)))
    fig = overlay_histograms_figure(
        {name_a: _percent_hist(l0_pooled, lb, len(l0_pooled)),
         name_b: _percent_hist(l0_plain, lb, len(l0_plain))},
        title="Active units per patch (L0 ≥ 1)", x_label=l0_label(lb))
    (c2 if P is not None else c1).plotly_chart(legend_below(percent_axis(fig, "% of patches")),
                                               key="sparsity_cmp_l0")
    st.caption(f"Patches with no active unit at all, left out of the L0 histogram: "
               f"{percent(float((l0_pooled == 0).mean()))} for {pooled_ref.name}, "
               f"{percent(float((l0_plain == 0).mean()))} for {plain_ref.name}. "
               "Each model was trained with its own λ, so the overall level of sparsity "
               "differs; look at how the activity is spread over pools, not at its amount.")


def l0_bins(hi: int, most: int = 50) -> np.ndarray:
    """Bin edges for L0 = 1 … hi (the all-zero codes are stated, not drawn): bins of one unit,
    or of w units when that would make more than `most` bars; each centred on its counts."""
    w = max(1, int(np.ceil(hi / most)))
    return np.arange(1, hi + w + 1, w) - 0.5


def _percent_hist(values: np.ndarray, edges: np.ndarray,
                  total: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A histogram as percent of `total` values (default: all of them)."""
    counts, edges = np.histogram(values, edges)
    n = values.size if total is None else total
    return (100.0 * counts / n if n else counts.astype(float)), edges


st.title("Sparsity")
ref = app_ui.require_run()
run = ref.load()
z = own_codes(ref.path, ref.stamp)
P = analysis.pool_matrix(ref.path, ref.stamp)
t = activity_threshold(z)
s = sparsity_summary(z, P, t)
freq = firing_frequency(z, t)
l0 = active_count(z, t)
dead = np.flatnonzero(freq <= 0)
n, K = z.shape
zero = int((l0 == 0).sum())

fewer = "" if n == ACTIVITY_SAMPLES else f"; {ref.name} has only {n}, all used"
st.caption(f"One rule for every run: {ACTIVITY_RULE}{fewer} (for {ref.name}: |z| > {t:.2g}). "
           f"Everything on this page is measured on those patches, as the run's analysis and "
           f"the comparison below measure it.")
if (per := run.model.rows_per_sample) != 1:
    st.info(f"{ref.name} is convolutional: each of its code rows is one position of an image's "
            f"code maps ({per} per image), so “patch” on this page means such a position and a "
            f"unit is one feature map: {CONV_ACTIVITY_RULE}.")
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Active units per patch", units_text(s["mean_l0"], K),
          help="Population sparsity: the mean L0 of a code, all-zero codes included.")
c2.metric("Patches with no active unit", percent(s["zero_code_fraction"]),
          help="Share of patches whose code is all zero: no unit is active.")
c3.metric("Hoyer sparseness", fmt(s["hoyer"], 2),
          help="1: a single active unit; 0: all units equally active (all-zero codes left out).")
c4.metric("Dead units", f"{dead.size} of {K}", help="Units never active on these patches.")
if P is not None:
    g = group_norms(z, P)
    c5.metric("Active pools per patch", units_text(s["mean_active_pools"], P.shape[0]),
              help="Pools whose norm ‖z_P‖₂ exceeds the same threshold.")
elif analysis.has_pools(ref):
    g = None
    c5.metric("Pools", "not counted",
              help=f"{ref.name} pools its units, but it has too many units and pools for the "
                   f"pool statistics here (they need the whole pools × units matrix); its "
                   f"penalty never builds that matrix.")
else:
    g = None
    c5.metric("Pools", "none", help="This model has no group structure.")

left, right = st.columns(2)
with left:
    counts, edges = activation_histogram(z, bins=60, active_only=True, threshold=t)
    st.plotly_chart(histogram_figure(counts, edges, "Activations of active units",
                                     "z", log_y=True), key="sparsity_act_hist")
    fig = sorted_bar_figure(100 * freq, "Firing frequency per unit (red: dead)",
                            highlight_below=0.0)
    fig.update_traces(hovertemplate="unit %{customdata}: active on %{y:.1f} % of patches"
                                    "<extra></extra>")
    st.plotly_chart(percent_axis(fig, "% of patches"), key="sparsity_freq")
with right:
    if zero == n:
        st.warning(f"No patch has an active unit: every code of {ref.name} is zero.")
    else:
        hi = int(l0.max())
        lb = l0_bins(hi)
        fig = histogram_figure(*_percent_hist(l0[l0 > 0], lb, n),
                               "Active units per patch (L0), patches with at least one",
                               l0_label(lb))
        st.plotly_chart(percent_axis(fig, "% of patches"), key="sparsity_l0")
        why = ""
        if zero and run.model.rows_per_sample == 1:  # else a code row is not an input row
            norms = run.dataset().x[:n].reshape(n, -1).float().norm(dim=1).numpy()
            why = (f" Their patches have a median norm ‖x‖ of {np.median(norms[l0 == 0]):.2g}, "
                   f"the others {np.median(norms[l0 > 0]):.2g}.")
        st.caption(f"**{percent(s['zero_code_fraction'])} of the patches ({zero} of {n}) have "
                   f"no active unit at all** (an all-zero code) and are left out of this "
                   f"histogram; it shows the other {n - zero}, as % of all {n} patches. "
                   f"Among those, {units_text(s['mean_l0_nonzero'], K)} units are active on "
                   f"average.{why}")
    shape, _ = run.layout.map_shape()
    rows, cols = shape or (0, 0)
    if shape is not None and rows * cols == K:
        fig = map_heatmap_figure(100 * freq.reshape(rows, cols),
                                 "Firing frequency on the unit map", zmin=0,
                                 value_label="% of patches")
        fig.update_traces(hovertemplate="row %{y}, col %{x}: active on %{z:.1f} % of patches"
                                        "<extra></extra>")
        st.plotly_chart(fig, key="sparsity_freq_map")

if g is not None:
    st.plotly_chart(histogram_figure(*np.histogram(g, 60), "Pool norms ‖z_P‖₂ (what the "
                                     "group penalty sums)", "pool norm", log_y=True),
                    key="sparsity_pools")
if dead.size:
    st.warning(f"{dead.size} dead unit(s), never active on these patches: "
               + ", ".join(map(str, dead[:40])) + (" …" if dead.size > 40 else ""))
else:
    st.caption("No dead units: every unit is active on some patches.")

st.divider()
group_vs_l1_ui(ref, z)
