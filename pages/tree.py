"""Tree: units organised as a tree by lateral inhibition (Gregor, Szlam & LeCun, NIPS 2011).

With S_ij > 0 for every pair except a unit and its ancestors or descendants, the units active on
an input lie along one root-to-leaf path. This page draws the tree with each unit's filter, the
S matrix in the tree's order, one input's active units on the tree, and each branch's usage;
it prunes rarely used branches and retrains, in the background.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui import tree as tv
from app_ui.widgets import fmt, plain
from sparse_models.config import ConfigError
from sparse_models.presets import build_run_config, run_config_sections
from sparse_models.trees import MAX_UNITS, check_tree_shape

SHIPPED_TREE = "lateral-tree"


def numbers_ui(report: dict, view: dict) -> None:
    c = st.columns(5)
    c[0].metric("On one path", f"{100 * report['path_share']:.1f} %"
                if report.get("path_share") is not None else "—",
                help="Of the inputs with any active unit, the share whose active units all lie "
                     "on one root-to-leaf path (the tree's aim; the paper's target is most "
                     "inputs).")
    c[1].metric("Parent–child similarity", fmt(report.get("parent_child_similarity")),
                delta=(f"× {report['parent_child_similarity_ratio']:.2f} all pairs"
                       if report.get("parent_child_similarity_ratio") is not None else None),
                delta_color="off", delta_arrow="off",
                help="Mean |cosine| between a unit's filter and its parent's, and its ratio to "
                     f"the mean over all pairs ({fmt(report.get('all_pairs_similarity'))}). "
                     "Above 1: along a branch, related features.")
    c[2].metric("Clashes", f"{100 * report['clash_share']:.1f} %"
                if report.get("clash_share") is not None else "—",
                help="Inputs on which two units that inhibit each other (S_ij > 0) are both "
                     "active; for a model without S, two units not on one root-to-leaf path.")
    c[3].metric("Active units per input", fmt(report.get("mean_active_units")),
                help=f"Mean over the first {report.get('n_samples')} training inputs.")
    c[4].metric("Rare branches", f"{report.get('branches_under_1pct')} of "
                f"{report.get('tree_units')}",
                help="Units whose branch (the unit and its subtree) is active on fewer than "
                     "1 % of the inputs: what a prune at 1 % removes. The least used is unit "
                     f"{report.get('min_branch_unit')}, on "
                     f"{100 * (report.get('min_branch_usage') or 0):.2f} %.")
    st.caption(f"{report.get('tree_count')} tree(s), depth {report.get('tree_depth')}, "
               f"{report.get('tree_units')} units · explained variance "
               f"{fmt(report.get('explained_variance'))} · measured on the first "
               f"{view['n_samples']} training inputs.")


def sample_ui(n: int, labelled: bool) -> int:
    what = "digit" if labelled else "patch"
    return int(st.number_input(f"Training input ({what} number)", 0, max(n - 1, 0), 0, 1,
                               key="tree_sample", bind="query-params",
                               help="One of the run's training inputs: its code, its "
                                    "reconstruction and its active units on the tree."))


def prune_ui(ref: app_ui.RunRef, view: dict) -> float:
    usage = view["branch_usage"]
    run = ref.load()
    c1, c2, c3 = st.columns([3, 1, 2], vertical_alignment="bottom")
    t = c1.slider("Prune branches used on fewer than (% of inputs)", 0.0, 20.0, 1.0, 0.25,
                  key="tree_threshold", bind="query-params",
                  help="A branch is a unit and its whole subtree; its usage is the share of "
                       "the inputs on which any of its units is active.") / 100.0
    gone = int((usage < t).sum())
    steps = int(c2.number_input("Steps after", 1, 1_000_000, int(run.config.train.steps),
                                key="tree_prune_steps"))
    name = c3.text_input("New run name (optional)", key="tree_prune_name",
                         placeholder=f"{ref.name}-pruned")
    if gone == len(usage):
        st.error(f"A threshold of {100 * t:.3g} % removes every branch (the most used is "
                 f"used on {100 * usage.max():.3g} % of the inputs); lower it.")
    else:
        st.caption(f"Removes {gone} of {len(usage)} units; {ref.name} itself is kept, the "
                   f"pruned tree becomes a new run that trains on for {steps} steps.")
    st.button("Prune and continue training", type="primary", key="tree_prune",
              disabled=gone == len(usage) or not view["prunable"] or ref.info.state
              in ("running", "queued"), on_click=tv.start_prune,
              args=(ref.path, t, steps, name))
    return t


def retrain_ui(ref: app_ui.RunRef) -> None:
    run = ref.load()
    if run.config.model != "lateral":
        st.caption(f"{ref.name} is a {run.config.model!r} run; retrain it with other tree "
                   f"groups (pool type *tree*) on the Train page, or a tree with the lateral "
                   f"model.")
        return
    m = run.config.model_config
    tree = m.tree()
    depth0 = int(tree.depths.max()) + 1
    kids = [len(k) for k in tree.children if k]
    c = st.columns(4)
    depth = c[0].number_input("Depth", 1, 12, min(depth0, 12), key="tree_depth",
                              bind="query-params")
    branching = c[1].number_input("Branching", 1, 64, max(kids) if kids else m.branching,
                                  key="tree_branching", bind="query-params")
    n_trees = c[2].number_input("Number of trees", 1, 256, len(tree.roots), key="tree_n_trees",
                                bind="query-params")
    steps = c[3].number_input("Steps", 1, 1_000_000, int(run.config.train.steps),
                              key="tree_steps", bind="query-params")
    c = st.columns(4, vertical_alignment="bottom")
    lam = c[0].number_input("λ", 0.0, 100.0, float(m.lam), 0.05, key="tree_lam",
                            bind="query-params", help="Weight of the L1 penalty.")
    s_scale = c[1].number_input("S scale", 0.0, 100.0, float(m.s_scale), 0.1,
                                key="tree_s_scale", bind="query-params",
                                help="Inhibition of every allowed pair at the start.")
    learn_s = c[2].toggle("Learn S", bool(m.learn_s), key="tree_learn_s", bind="query-params",
                          help="Gradient ascent on S after each step on D, up to its bound.")
    name = c[3].text_input("Run name (optional)", key="tree_name", placeholder="lateral-<time>")
    config = None
    try:
        check_tree_shape(int(depth), int(branching), int(n_trees))
        sections = run_config_sections(run.config)
        sections["model"].update(structure="tree", parents=[], depth=int(depth),
                                 branching=int(branching), n_trees=int(n_trees), lam=float(lam),
                                 s_scale=float(s_scale), learn_s=bool(learn_s),
                                 s_max=max(float(m.s_max), float(s_scale)))
        sections["train"]["steps"] = int(steps)
        config = build_run_config("lateral", {}, base=sections, command="app: Tree page")
        st.caption(plain(f"These settings make: "
                         f"{config.model_cls.summarize_config(config.model_config)}"
                         f", on {config.data.source} data (as {ref.name}), from scratch."))
    except ConfigError as exc:
        st.error(plain(str(exc)))
    st.button("Train this tree", key="tree_retrain", disabled=config is None,
              on_click=tv.start_retrain, args=(config, name))


st.title("Tree")
ref = app_ui.require_run()
tree, why = tv.tree_of(ref)
if tree is None:
    st.info(plain(why) + " This page shows models whose units form a tree: the **lateral** "
            "model (sparse coding with lateral inhibition) with structure *tree*, or the "
            "**topographic** model with pool type *tree* (group sparsity over subtrees or "
            "paths). Train one on the Train page, or pick a tree run in the sidebar.")
    if any(r.name == SHIPPED_TREE for r in app_ui.all_runs()):
        st.button(f"Show the shipped tree run {SHIPPED_TREE}", key="tree_show_shipped",
                  on_click=app_ui.select_run, args=(SHIPPED_TREE,))
    st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

msg = st.session_state.pop(tv.MESSAGE_KEY, None)
if msg is not None:
    (st.success if msg[0] == "success" else st.error)(plain(msg[1]))

view = tv.tree_view(ref.path, ref.stamp)
report = analysis.summary(ref.path, ref.stamp)
numbers_ui(report, view)

n_data = len(ref.load().dataset().x)
left, right = st.columns([5, 2])
with right:
    index = sample_ui(n_data, ref.load().dataset().y is not None)
    s = tv.sample_code(ref.path, ref.stamp, index)
    c1, c2 = st.columns(2)
    scale = float(np.abs(s["x"]).max())
    c1.plotly_chart(tv.picture_figure(s["x"], "Input", scale), key="tree_input")
    c2.plotly_chart(tv.picture_figure(s["x_hat"], "Reconstruction", scale), key="tree_recon")
    active = np.flatnonzero(np.abs(s["code"]) > 0)
    if s["label"] is not None:
        st.caption(f"Label: {s['label']}")
    if active.size == 0:
        st.info("No unit is active on this input: its code is all zero.")
    else:
        one, pair = tv.path_check(view["parents"], active)
        if one:
            st.success(f"Its {active.size} active unit{'s' if active.size > 1 else ''} "
                       f"lie{'' if active.size > 1 else 's'} on one root-to-leaf path.")
        else:
            st.warning(f"Its {active.size} active units are not on one path: units {pair[0]} "
                       f"and {pair[1]} are on different branches"
                       + (" (they inhibit each other)." if view["S"] is not None else "."))
        depth = view["depths"][active]
        st.caption("Active units (by depth): " + ", ".join(
            f"{u} (d{d}, z={s['code'][u]:.2g})" for u, d in sorted(zip(active, depth, strict=True),
                                                                     key=lambda t: t[1])))
with left:
    radial = st.toggle("Radial layout", True, key="tree_radial", bind="query-params",
                       help="Leaves round a circle (the periphery), roots in the middle; off: "
                            "one row per depth.")
    x, y = tv.positions(tree, radial)
    hover = {"depth": view["depths"], "tree": view["tree_index"],
             "usage (%)": 100 * view["unit_usage"], "branch usage (%)": 100 * view["branch_usage"],
             "|cos| with parent": view["parent_similarity"]}
    st.plotly_chart(tv.tree_figure(view["parents"], x, y, view["depths"], view["uris"], hover,
                                   active), key="tree_diagram")
    st.caption("Each node is its unit's decoder filter; the active units of the chosen input "
               "are outlined in red. Drag to zoom, double-click to reset; hover for a unit's "
               "numbers." + ("" if view["uris"] else f" (Over {tv.MAX_PICTURES} units the "
                                                       "nodes are dots.)"))

st.subheader("Branch usage")
threshold_placeholder = st.container()
st.subheader("Prune rarely used branches")
if not view["prunable"]:
    st.caption(f"{ref.name}'s model cannot be pruned here (pruning is the lateral model's).")
    threshold = None
else:
    threshold = prune_ui(ref, view)
with threshold_placeholder:
    st.plotly_chart(tv.branch_usage_figure(view["branch_usage"], view["order"], view["depths"],
                                           threshold), key="tree_usage")

st.subheader("Lateral inhibition S")
if view["S"] is None:
    st.caption(f"{ref.name}'s model has no S matrix.")
else:
    st.plotly_chart(tv.s_heatmap_figure(view["S"], view["order"], view["depths"]),
                    key="tree_s")
    st.caption("Rows and columns in the tree's depth-first order, so every branch is a block; "
               "S is zero where one unit is an ancestor of the other (they may fire "
               "together) and on the diagonal.")

st.subheader("Retrain a tree")
st.caption(f"Up to {MAX_UNITS} units. Training runs in the background, like on the Train page.")
retrain_ui(ref)
