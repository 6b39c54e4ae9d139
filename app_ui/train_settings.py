"""Settings widgets of the Train page: model, group structure, loss weights, data, schedule.

Each `*_ui` draws its widgets (keys prefixed with the caller's `k`, so every model and every
starting run keeps its own values) and returns plain dicts for `build_run_config`.
"""

from __future__ import annotations

import math
import typing
from typing import Any

import numpy as np
import streamlit as st
import torch

from sparse_models.config import ConfigError, FieldInfo, field_infos, from_dict
from sparse_models.data import available_sources, get_source
from sparse_models.groups import GroupSpec, pool_overlay
from sparse_models.models import available_models, get_entry
from sparse_models.plotting import pool_preview_figure
from sparse_models.presets import default_sections, run_config_sections, switch_source
from sparse_models.trees import check_tree_shape

from .runs import RunRef, open_run, selected_run_info
from .widgets import plain

POOL_KINDS = ("neighbourhood", "blocks", "tree", "none")
MAX_MAP_SIDE = 48
MAX_UNITS = MAX_MAP_SIDE * MAX_MAP_SIDE


def model_choice_ui() -> str:
    models = list(available_models())  # registration order: the showcase model first
    # No format_func: the URL keeps the option as shown, and a link must name the model.
    model = st.selectbox("Model", models, index=0, key="train_model", bind="query-params",
                         help="; ".join(f"{m}: {get_entry(m).description}" for m in models))
    st.caption(get_entry(model).description)
    return model


def start_from_ui(model: str) -> RunRef | None:
    """The run whose weights start the new one (what-if retraining), or None for scratch."""
    info = selected_run_info()
    usable = info is not None and info.model == model and info.state in (
        "completed", "stopped", "interrupted")
    options = ["Scratch (random weights)"]
    if usable:
        options.append(f"The current run's weights ({info.name})")
    choice = st.radio("Start from", options, key=f"train_start_{model}", bind="query-params", horizontal=True,
                      help="Starting from the current run keeps its map size and patch size "
                           "(the weights must fit) and loads its settings, so you can change "
                           "one thing, e.g. the pool size, and retrain: a what-if.")
    if not usable:
        st.caption(f"To retrain from a run's weights, pick a finished {model} run in the sidebar.")
    if choice == options[0]:
        return None
    ref, error = open_run(info)
    if ref is None:
        st.error(error)
    return ref


def base_sections(model: str, parent: RunRef | None) -> dict[str, dict[str, Any]]:
    if parent is None:
        return default_sections(model)
    sections = run_config_sections(parent.load().config)
    defaults = default_sections(model)
    # a parent's own length rarely suits a short what-if; keep its model and data settings, and
    # its rate with the warm-up and decay that rate was chosen for
    keep = ("batch_size", "lr", "optimizer", "lr_warmup", "lr_decay")
    sections["train"] = {**defaults["train"], **{k: v for k, v in sections["train"].items()
                                                 if k in keep}}
    return sections


def group_ui(base: dict[str, Any], locked: bool, k: str,
             problems: list[str]) -> tuple[dict[str, Any], GroupSpec | None]:
    """Group-structure widgets; returns the group dict and its validated spec (None + an error
    shown when the combination is impossible). Map kinds show the map and pool widgets; the
    tree kind shows the tree's instead (its units lie in a row, so it has no map to size)."""
    c1, c2, c3 = st.columns(3)
    bad = len(problems)
    kinds = list(POOL_KINDS) + ([base["kind"]] if base.get("kind") not in POOL_KINDS else [])
    kind = c3.selectbox("Pool type", kinds, index=kinds.index(base.get("kind", "neighbourhood")),
                        key=f"{k}_kind", bind="query-params", help="neighbourhood: overlapping k×k windows on the "
                        "map; blocks: non-overlapping k×k tiles; tree: subtrees or root-to-leaf "
                        "paths of one or more trees; none: plain L1 (no groups).")
    if kind == "tree":
        return _tree_group_ui(base, locked, k, problems, (c1, c2), bad)
    rows0, cols0 = (int(v) for v in base.get("map_shape", (16, 16)))
    with c1:
        rows = checked_number("Map rows", rows0, 1, MAX_MAP_SIDE, f"{k}_rows", problems,
                              integer=True, disabled=locked)
    with c2:
        cols = checked_number("Map columns", cols0, 1, MAX_MAP_SIDE, f"{k}_cols", problems,
                              integer=True, disabled=locked)
    c4, c5 = st.columns(2)
    size = c4.slider("Pool size k (k×k)", 1, 12, int(base.get("size", 3)), key=f"{k}_size", bind="query-params",
                     disabled=kind == "none")
    stride = c5.slider("Stride (overlap = k − stride)", 1, 8, int(base.get("stride", 1)),
                       key=f"{k}_stride", bind="query-params", disabled=kind != "neighbourhood")
    c6, c7, c8 = st.columns(3)
    wrap = c6.checkbox("Wrap around (torus)", bool(base.get("wrap", True)), key=f"{k}_wrap", bind="query-params",
                       disabled=kind != "neighbourhood")
    sigma0 = base.get("sigma")
    gauss = c7.checkbox("Gaussian weights", sigma0 is not None, key=f"{k}_gauss", bind="query-params",
                        disabled=kind != "neighbourhood")
    sigma = c8.slider("Gaussian σ (map units)", 0.25, 5.0, float(sigma0 or 1.0), 0.25,
                      key=f"{k}_sigma", bind="query-params", disabled=kind != "neighbourhood" or not gauss)
    group = {**base, "kind": kind, "map_shape": [int(rows), int(cols)], "size": int(size),
             "stride": int(stride), "wrap": bool(wrap),
             "sigma": float(sigma) if gauss and kind == "neighbourhood" else None}
    return group, _spec_or_error(group, problems, bad)


def _tree_group_ui(base: dict[str, Any], locked: bool, k: str, problems: list[str],
                   first: tuple[Any, Any], bad: int) -> tuple[dict[str, Any], GroupSpec | None]:
    """The tree kind's widgets (depth, branching, trees, pools, level), ranges from GroupSpec's
    own settings; the map shape follows from the tree: one row of all its units."""
    info = {i.name: i for i in field_infos(GroupSpec)}

    def number(name: str, disabled: bool = False) -> int:
        i = info[name]
        return int(checked_number(i.label, int(base.get(name, i.default)), i.min, i.max,
                                  f"{k}_{name}", problems, integer=True, help=i.help,
                                  disabled=disabled))

    with first[0]:
        depth = number("depth", disabled=locked)
    with first[1]:
        branching = number("branching", disabled=locked)
    c4, c5, c6 = st.columns(3)
    with c4:
        n_trees = number("n_trees", disabled=locked)
    options = list(typing.get_args(info["pools"].type))
    pools0 = base.get("pools", info["pools"].default)
    pools = c5.selectbox(info["pools"].label, options,
                         index=options.index(pools0) if pools0 in options else 0,
                         key=f"{k}_pools", bind="query-params", help=info["pools"].help)
    with c6:
        level = number("level", disabled=pools != "depth")
    group = {**base, "kind": "tree", "depth": depth, "branching": branching, "n_trees": n_trees,
             "pools": pools, "level": level}
    try:
        n = check_tree_shape(depth, branching, n_trees,
                             why_limit="the pool matrix is dense, pools × units")
    except ConfigError:
        n = None  # said in words by the spec's check below
    if n is not None:
        group["map_shape"] = [1, n]
        per = n // n_trees
        st.caption(f"{n_trees} tree{'s' if n_trees > 1 else ''} × {per} units = **{n} units** "
                   f"(one per node; each unit's filter is a node on the Tree page).")
    return group, _spec_or_error(group, problems, bad)


def _spec_or_error(group: dict[str, Any], problems: list[str],
                   bad: int) -> GroupSpec | None:
    """The validated spec of the widgets' values, or None with the reason shown."""
    if len(problems) > bad:
        return None
    try:
        spec = from_dict(GroupSpec, group)
    except ConfigError as exc:
        st.error(plain(f"Impossible group structure: {exc}"))
        return None
    if spec.n_units > MAX_UNITS:
        st.error(f"{spec.n_units} units is more than this app trains ({MAX_UNITS}).")
        return None
    return spec


def pool_preview_ui(spec: GroupSpec) -> None:
    if spec.kind == "tree":
        _tree_pool_preview(spec)
        return
    P = spec.pool_matrix()
    rows, cols = spec.map_shape
    centre = (rows // 2) * cols + cols // 2
    example = int(np.argmax(P[:, centre]))
    st.plotly_chart(pool_preview_figure(pool_overlay(spec), pool_overlay(spec, example)),
                    key="train_pool_preview")
    st.caption(f"{spec.describe()}. Left: how many pools each unit is in; right: the pool "
               f"around the centre unit.")


def _tree_pool_preview(spec: GroupSpec) -> None:
    """The tree with one pool framed in red: the first that is neither one unit nor a whole
    tree, where there is one (the others look alike)."""
    from .tree import positions, tree_figure

    tree = spec.tree()
    P = spec.pool_matrix() > 0  # (J, N)
    sizes = P.sum(1)
    per_tree = spec.n_units // spec.n_trees
    middle = np.flatnonzero((sizes > 1) & (sizes < per_tree))
    example = int(middle[0]) if middle.size else 0
    x, y = positions(tree, radial=True)
    cover = P.sum(0)
    fig = tree_figure(np.asarray(tree.parents), x, y, tree.depths, [],
                      {"depth": tree.depths, "pools it is in": cover},
                      np.flatnonzero(P[example]), width_px=420)
    # dots coloured by coverage instead of the page's grey squares (there are no filters yet)
    fig.update_traces(selector=dict(name="units"), marker=dict(
        symbol="circle", size=10, color=cover, colorscale="Viridis",
        colorbar=dict(title="pools", thickness=10)))
    st.plotly_chart(fig, key="train_pool_preview")
    st.caption(f"{spec.describe()}. Dots: how many pools each unit is in; framed in red: pool "
               f"{example} ({int(sizes[example])} units).")


def _link_value(label: str, key: str, default: float, integer: bool) -> float:
    """The field's value from the page's URL when it holds a usable number, else `default`. A
    value that is no number at all (`1e400`, `nan`, text) is dropped with a message: a bad link
    costs that one value, not the page. (Streamlit's own URL binding would raise on `1e400`.)"""
    if key not in st.query_params:
        return default
    raw = st.query_params[key]
    try:
        value = float(raw)
        ok = math.isfinite(value) and abs(value) < 1e15 and (not integer or value == int(value))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if ok:
        return int(value) if integer else value
    del st.query_params[key]
    st.warning(plain(f"The link's value for {label} ({str(raw)[:40]}) is not a usable "
                     f"{'whole number' if integer else 'number'}; the default is shown."))
    return default


def checked_number(label: str, value: float, lo: float | None, hi: float | None, key: str,
                   problems: list[str], integer: bool = False, step: float | None = None,
                   help: str | None = None, disabled: bool = False) -> float:
    """A number input that accepts whatever is typed and says in words when it is outside
    [lo, hi]: the value is then added to `problems` (Start stays disabled) instead of being
    silently replaced by the last valid one. Its value is kept in the page's URL."""
    default = int(value) if integer else float(value)
    if key not in st.session_state:
        st.session_state[key] = _link_value(label, key, default, integer)
    if integer:
        widget = st.number_input(label, step=int(step or 1), key=key, help=help,
                                 disabled=disabled)
    else:
        widget = st.number_input(label, step=step, format="%g", key=key, help=help,
                                 disabled=disabled)
    widget = int(widget) if integer else float(widget)
    if widget == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(widget)
    info = FieldInfo(name=label, type=int if integer else float, default=value, label=label,
                     min=lo, max=hi)
    try:
        info.check_range(widget)
    except ConfigError as exc:
        if not disabled:
            st.error(str(exc))
            problems.append(label)
    return widget


def _input_for(info: FieldInfo, value: Any, key: str, problems: list[str],
               disabled: bool = False) -> Any:
    """One widget for one config field, from its type and its `setting` metadata."""
    tp, label, help_ = info.type, info.label, info.help or None
    if typing.get_origin(tp) is typing.Literal:
        options = list(typing.get_args(tp))
        return st.selectbox(label, options, index=options.index(value) if value in options
                            else 0, key=key, bind="query-params", help=help_, disabled=disabled)
    if tp is bool:
        return st.checkbox(label, bool(value), key=key, bind="query-params", help=help_,
                           disabled=disabled)
    if tp is int:
        return checked_number(label, int(value), info.min, info.max, key, problems,
                              integer=True, step=info.step, help=help_, disabled=disabled)
    if tp is float:
        step = info.step or max(1e-4, abs(float(value)) / 10 or 0.01)
        return checked_number(label, float(value), info.min, info.max, key, problems,
                              step=step, help=help_, disabled=disabled)
    if tp is str:
        if not info.url:  # e.g. a path on the server's disk: typed here, never from a link
            return st.text_input(label, value or "", key=key, help=help_, disabled=disabled)
        return st.text_input(label, value or "", key=key, bind="query-params", help=help_,
                             disabled=disabled)
    return value  # a field the form does not edit (e.g. a list of image names) keeps its value


def fields_ui(cls: type, base: dict[str, Any], locked: bool, k: str, problems: list[str],
              columns: int = 3, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Widgets for every field a config class shows in forms (`setting(form=True)`), in
    declaration order; fields that do not apply to the values chosen above them (`when`) are
    disabled, and fields that fix the weights' shapes are locked when starting from a run."""
    out: dict[str, Any] = {}
    infos = [i for i in field_infos(cls) if i.form and i.name not in skip
             and i.type is not GroupSpec]
    cols = st.columns(columns)
    for n, info in enumerate(infos):
        with cols[n % columns]:
            value = base.get(info.name, info.default)
            off = (locked and info.shape) or not info.applies({**base, **out})
            out[info.name] = _input_for(info, value, f"{k}_{info.name}", problems, disabled=off)
    return out


def group_fields(cls: type) -> list[FieldInfo]:
    """The fields of a model config that hold a group (pool) structure."""
    return [i for i in field_infos(cls) if i.type is GroupSpec]


def model_fields_ui(model: str, base: dict[str, Any], locked: bool, k: str,
                    problems: list[str]) -> dict[str, Any]:
    """Widgets for the model's own settings (loss weights, inference, ...), from its config."""
    return fields_ui(get_entry(model).config_cls, base, locked, f"{k}_m", problems)


def data_ui(base: dict[str, Any], locked: bool, k: str, problems: list[str]) -> dict[str, Any]:
    """The data source and its own settings (from the source's config)."""
    sources = list(available_sources())
    current = base.get("source", sources[0])
    # No format_func: the URL keeps the option as shown, and a link must name the source.
    source = st.selectbox("Data", sources, index=sources.index(current) if current in sources
                          else 0, key=f"{k}_source", bind="query-params",
                          help="; ".join(f"{n}: {get_source(n).description}" for n in sources))
    st.caption(get_source(source).description)
    if source != current:
        base = switch_source(base, source)
    out = {"source": source}
    out.update(fields_ui(get_source(source).Config, base, locked, f"{k}_{source}", problems,
                         columns=4))
    return out


def train_settings_ui(base: dict[str, Any], k: str, problems: list[str]) -> dict[str, Any]:
    from sparse_models.training.trainer import TrainConfig

    c = st.columns(6)
    out = dict(base)
    plain = [i for i in field_infos(TrainConfig) if i.form and i.name not in ("device", "threads")]
    for n, info in enumerate(plain):
        with c[n % 4]:
            out[info.name] = _input_for(info, base.get(info.name, info.default),
                                        f"{k}_{info.name}", problems)
    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    out["device"] = c[4].selectbox("Device", devices, key=f"{k}_device", bind="query-params",
                                   help="auto: CUDA when available, else CPU.")
    # One thread by default: these models are small, and on a busy 2-core machine two torch
    # threads fighting the web server for the cores train several times slower than one.
    with c[5]:
        out["threads"] = checked_number(
            "CPU threads", int(base.get("threads") or 1), 1, 64, f"{k}_threads", problems,
            integer=True, help="torch threads for training on the CPU (shared by the whole "
            "server process).")
    return out
