"""The Tree page's helpers: cached tree data per run, the figures, prune and retrain controls.

A run's units form a tree when its model's `layout.kind` is "tree": the lateral model with
structure=tree (Gregor, Szlam & LeCun 2011), or the topographic model with tree groups (pools
on subtrees or paths; no S, no pruning). Everything expensive (codes of the training
inputs, node pictures) is cached per run path + stamp, like `app_ui.analysis`.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from sparse_models import trees
from sparse_models.config import ConfigError
from sparse_models.data import DataError
from sparse_models.plotting import as_images
from sparse_models.training.runs import RunError

from .runs import RunRef, _load_run_cached

USAGE_SAMPLES = 5000  # inputs the branch usage is measured on (what pruning measures too)
MAX_PICTURES = 400  # above this many units the nodes are dots, not filter pictures
EDGE = "#9aa0a6"
ACTIVE = "#ff2b2b"


def _run(path: str, stamp: float):
    return _load_run_cached(path, stamp)


def tree_of(ref: RunRef) -> tuple[trees.Tree | None, str | None]:
    """`(tree, None)` when the run's units form a tree, else `(None, why not)` in words."""
    run = ref.load()
    layout = run.layout
    if layout.kind == "tree" and layout.parents:
        return trees.Tree(tuple(layout.parents)), None
    what = {"map": "lie on a 2-D map", "sheet": "lie on a sheet over the image"}.get(
        layout.kind, "have no spatial layout")
    detail = ""
    if run.config.model == "lateral":
        detail = f" (its S has structure {run.model.config.structure!r})"
    group = getattr(run.model.config, "group", None)
    if group is not None and hasattr(group, "kind"):
        detail = f" (its pools are of kind {group.kind!r})"
    return None, (f"{ref.name} is a {run.config.model!r} run whose units {what}{detail}, not a "
                  f"tree.")


def positions(tree: trees.Tree, radial: bool) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of each unit: leaves evenly spaced in depth-first order, each inner unit above the
    middle of its children, one level per depth. `radial`: the leaves round a circle (the
    periphery), roots on the innermost ring."""
    order = tree.dfs_order()
    x = np.zeros(tree.n_units)
    leaf_rank = {int(u): k for k, u in enumerate(u for u in order if not tree.children[u])}
    for u in order[::-1]:  # children before their parents
        kids = tree.children[u]
        x[u] = np.mean([x[k] for k in kids]) if kids else leaf_rank[int(u)]
    depth = tree.depths.astype(float)
    n_leaves = max(len(leaf_rank), 1)
    if radial:
        angle = 2 * np.pi * (x + 0.5) / n_leaves
        radius = depth + 1.0
        scale = max(1.0, n_leaves / (2 * np.pi * (depth.max() + 1)))  # leaves ~1 apart
        return scale * radius * np.cos(angle), scale * radius * np.sin(angle)
    gap = max(1.5, 0.35 * n_leaves / max(depth.max(), 1.0))
    return x, -gap * depth


def _png_uri(img: np.ndarray, upscale: int = 4) -> str:
    """A [-1, 1] picture (h, w) as a grey PNG data URI."""
    a = np.clip((img + 1.0) * 127.5, 0, 255).astype(np.uint8)
    a = a.repeat(upscale, 0).repeat(upscale, 1)
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _scaled(f: np.ndarray) -> np.ndarray:
    """Each picture (N, h, w) divided by its own largest |value| (a zero one stays 0)."""
    s = np.abs(f).reshape(len(f), -1).max(1)
    return f / np.where(s > 0, s, 1.0)[:, None, None]


@st.cache_data(max_entries=16, show_spinner="Reading the tree…")
def tree_view(path: str, stamp: float) -> dict[str, Any]:
    """What the page draws of a run's tree, computed once per run: the units' depths, tree and
    DFS order; their filter pictures (PNG data URIs); unit and branch usage on the first
    USAGE_SAMPLES training inputs; each unit's |cosine| with its parent's filter; S ordered by
    the DFS order (None for a model without S)."""
    run = _run(path, stamp)
    model = run.model
    tree = trees.Tree(tuple(run.layout.parents))
    x = run.dataset().x[:USAGE_SAMPLES].float()
    x = x.reshape(x.shape[0], -1)
    with torch.no_grad():
        codes = torch.cat([model.encode(x[s:s + 1000]) for s in range(0, x.shape[0], 1000)])
    codes = codes.reshape(codes.shape[0], -1)
    filters = run.filters()
    flat = filters.reshape(len(filters), -1).astype(np.float64)
    flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    parent_sim = np.array([abs(float(flat[i] @ flat[q])) if q >= 0 else np.nan
                           for i, q in enumerate(tree.parents)])
    pictures = _scaled(as_images(filters).astype(np.float32))
    uris = [_png_uri(p) for p in pictures] if tree.n_units <= MAX_PICTURES else []
    extra = model.extra_state_for_ui() if hasattr(model, "extra_state_for_ui") else {}
    order = tree.dfs_order()
    S = extra.get("S")
    return {
        "parents": np.asarray(tree.parents), "depths": tree.depths, "tree_index": tree.tree_index,
        "order": order, "uris": uris, "n_samples": int(x.shape[0]),
        "unit_usage": trees.unit_usage(codes), "branch_usage": trees.branch_usage(tree, codes),
        "parent_similarity": parent_sim,
        "S": None if S is None else np.asarray(S)[np.ix_(order, order)],
        "prunable": hasattr(model, "branch_usage"),
    }


@st.cache_data(max_entries=64, show_spinner=False)
def sample_code(path: str, stamp: float, index: int) -> dict[str, Any]:
    """One training input's code and reconstruction: `x`, `x_hat` as pictures (h, w) (channels
    side by side), `code` (N,), and the sample's label when the data has labels."""
    run = _run(path, stamp)
    ds = run.dataset()
    x = ds.x[index:index + 1].float().reshape(1, -1)
    with torch.no_grad():
        z = run.model.encode(x)
        x_hat = run.model.decode(z)
    shape = tuple(run.model.input_shape)
    y = getattr(ds, "y", None)
    return {"x": as_images(x.reshape(1, *shape).numpy())[0],
            "x_hat": as_images(x_hat.reshape(1, *shape).numpy())[0],
            "code": z.reshape(-1).numpy(),
            "label": None if y is None else int(y[index])}


def path_check(parents: np.ndarray, active: np.ndarray) -> tuple[bool, tuple[int, int] | None]:
    """Whether the active units (indices) lie on one root-to-leaf path; if not, one pair of
    them that may inhibit each other (neither an ancestor of the other)."""
    tree = trees.Tree(tuple(int(p) for p in parents))
    related = tree.related
    for a in range(len(active)):
        for b in range(a + 1, len(active)):
            i, j = int(active[a]), int(active[b])
            if not related[i, j]:
                return False, (i, j)
    return True, None


# --- figures (arrays in, Plotly out) ----------------------------------------------------------

def node_sizes(x: np.ndarray, y: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """(N,) each node's picture side in data units: per depth, 85 % of the closest distance
    from a node of that depth to any other node, so no two pictures overlap and a level with
    room around it (the roots) is drawn larger than a crowded one (the leaves)."""
    depths = np.asarray(depths)
    if len(x) < 2:
        return np.ones(len(x))
    p = np.column_stack([x, y])
    d2 = ((p[:, None] - p[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nearest = np.sqrt(d2.min(1))
    out = np.empty(len(x))
    for d in np.unique(depths):
        idx = depths == d
        out[idx] = 0.85 * nearest[idx].min()
    return out


def tree_figure(parents: np.ndarray, x: np.ndarray, y: np.ndarray, depths: np.ndarray,
                uris: list[str], hover: dict[str, np.ndarray], active: np.ndarray | None = None,
                width_px: int = 900) -> go.Figure:
    """Node-link diagram: edges parent → child, each node its filter picture (when `uris`;
    sized by `node_sizes`), an invisible hover marker per node with `hover` values, and the
    `active` units (indices) framed in red with the edges between them drawn red."""
    n = len(parents)
    size = node_sizes(x, y, depths)
    xs, ys = [], []
    for i, q in enumerate(parents):
        if q >= 0:
            xs += [x[q], x[i], None]
            ys += [y[q], y[i], None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=EDGE, width=1),
                             hoverinfo="skip", showlegend=False, name="edges"))
    on = [] if active is None else sorted(int(i) for i in active)
    ax, ay = [], []
    for i in on:
        q = int(parents[i])
        if q in on:
            ax += [x[q], x[i], None]
            ay += [y[q], y[i], None]
    fig.add_trace(go.Scatter(x=ax, y=ay, mode="lines", line=dict(color=ACTIVE, width=3),
                             hoverinfo="skip", showlegend=False, name="active edges"))
    for i, uri in enumerate(uris):
        fig.add_layout_image(source=uri, x=float(x[i]), y=float(y[i]), xref="x", yref="y",
                             sizex=size[i], sizey=size[i], xanchor="center", yanchor="middle",
                             sizing="stretch", layer="above")
    for i in on:
        h = 0.55 * size[i]
        fig.add_shape(type="rect", x0=x[i] - h, x1=x[i] + h, y0=y[i] - h, y1=y[i] + h,
                      line=dict(color=ACTIVE, width=3), layer="above")
    labels = list(hover)
    custom = np.column_stack([np.arange(n)] + [np.asarray(hover[k], dtype=float)
                                               for k in labels])
    template = "unit %{customdata[0]}"
    for j, k in enumerate(labels):
        template += f"<br>{k}: %{{customdata[{1 + j}]:.3g}}"
    pad = float(size.max()) / 2 + 0.5
    x0, x1 = float(x.min()) - pad, float(x.max()) + pad
    y0, y1 = float(y.min()) - pad, float(y.max()) + pad
    px_per_unit = width_px / (x1 - x0)
    fig.add_trace(go.Scatter(
        x=x, y=y, mode="markers", customdata=custom, hovertemplate=template + "<extra></extra>",
        marker=dict(size=np.maximum(size * px_per_unit, 6.0),
                    color="rgba(0,0,0,0)" if uris else "#444", symbol="square"),
        showlegend=False, name="units"))
    height = int(np.clip(width_px * (y1 - y0) / (x1 - x0), 250, 720))
    fig.update_xaxes(visible=False, range=[x0, x1])
    fig.update_yaxes(visible=False, range=[y0, y1], scaleanchor="x")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=0, b=0), dragmode="zoom",
                      plot_bgcolor="#ffffff", hovermode="closest")
    return fig


def s_heatmap_figure(S: np.ndarray, order: np.ndarray, depths: np.ndarray,
                     height: int = 520) -> go.Figure:
    """S (already in the tree's DFS order) as a heatmap, each row and column labelled with its
    unit; zero blocks are the ancestor/descendant pairs."""
    o = np.asarray(order)
    labels = [f"{u} (d{depths[u]})" for u in o]
    fig = go.Figure(go.Heatmap(z=S, x=labels, y=labels, colorscale="Viridis", zmin=0,
                               colorbar=dict(title="S"),
                               hovertemplate="units %{y} and %{x}<br>S = %{z:.3g}<extra></extra>"))
    fig.update_xaxes(showticklabels=len(o) <= 40, title="unit (depth-first order)",
                     showgrid=False, constrain="domain")
    fig.update_yaxes(showticklabels=len(o) <= 40, autorange="reversed", scaleanchor="x",
                     showgrid=False, constrain="domain")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def branch_usage_figure(usage: np.ndarray, order: np.ndarray, depths: np.ndarray,
                        threshold: float | None = None, height: int = 320) -> go.Figure:
    """Each unit's branch usage (the share of inputs on which any unit of its subtree is
    active), in DFS order, coloured by depth; the prune threshold as a line."""
    o = np.asarray(order)
    fig = go.Figure(go.Bar(
        x=[str(u) for u in o], y=100 * np.asarray(usage)[o],
        marker=dict(color=np.asarray(depths)[o], colorscale="Viridis",
                    colorbar=dict(title="depth")),
        customdata=np.asarray(depths)[o],
        hovertemplate="unit %{x} (depth %{customdata})<br>branch used on %{y:.2f} % of the "
                      "inputs<extra></extra>"))
    if threshold is not None and threshold > 0:
        fig.add_hline(y=100 * threshold, line=dict(color=ACTIVE, dash="dash"),
                      annotation_text=f"prune threshold {100 * threshold:.3g} %")
    fig.update_xaxes(title="unit (depth-first order)", type="category",
                     showticklabels=len(o) <= 100)
    fig.update_yaxes(title="branch usage (% of inputs)")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def picture_figure(img: np.ndarray, title: str, scale: float | None = None,
                   height: int = 240) -> go.Figure:
    """An input or reconstruction (h, w) as a grey heatmap from −scale to scale (default: its
    own largest |value|), so an input and its reconstruction can share one scale."""
    m = float(scale or np.abs(img).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=img, colorscale="Greys_r", zmin=-m, zmax=m, showscale=False,
                               hovertemplate="%{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10))
    return fig


# --- prune and retrain in the background ------------------------------------------------------

MESSAGE_KEY = "tree_message"


def start_prune(path: str, threshold: float, steps: int, name: str) -> None:
    """Button callback: prune the run into a new one and train it on as a background job."""
    from sparse_models.cli import CLIError, prune_run

    from .jobs import job_manager

    manager = job_manager()
    try:
        run_dir, config, info = prune_run(path, threshold, name=name.strip() or None,
                                          steps=steps, runs_dir=manager.runs_dir,
                                          command="app: Tree page (prune)")
        manager.submit(None, resume_dir=run_dir)
    except (CLIError, ConfigError, RunError, DataError, ValueError, OSError) as exc:
        st.session_state[MESSAGE_KEY] = ("error", f"Could not prune: {exc}")
        return
    st.session_state[MESSAGE_KEY] = (
        "success", f"Pruned {info['units_before']} → {info['units_after']} units; training "
                   f"{run_dir.name} for {config.train.steps} steps in the background (see "
                   f"Training jobs in the sidebar).")


def start_retrain(config: Any, name: str) -> None:
    """Button callback: train a new tree model from these settings as a background job."""
    from .jobs import start_job as submit

    submit(config, name, MESSAGE_KEY)
