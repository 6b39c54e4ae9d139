"""Settings widgets of the Train page: model, group structure, loss weights, data, schedule.

Each `*_ui` draws its widgets (keys prefixed with the caller's `k`, so every model and every
starting run keeps its own values) and returns plain dicts for `build_run_config`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import numpy as np
import streamlit as st
import torch

from sparse_models.config import ConfigError
from sparse_models.groups import GroupSpec, pool_overlay
from sparse_models.models import available_models, get_entry
from sparse_models.plotting import pool_preview_figure
from sparse_models.presets import default_sections, run_config_sections

from .runs import RunRef, open_run, selected_run_info

POOL_KINDS = ("neighbourhood", "blocks", "none")
LABELS = {
    "lam": "λ (sparsity weight)",
    "l1": "Extra L1 weight (per unit)",
    "alpha": "α (prediction weight, optimal inference)",
    "encoder_decay": "Encoder weight decay",
    "inference": "Inference",
    "encoder": "Encoder nonlinearity",
    "infer_steps": "Inference steps (optimal mode)",
    "eps": "ε inside each pool's square root",
    "seed": "Model seed (initial weights)",
    "n_units": "Number of units",
    "solver": "Solver",
    "n_iter": "Solver iterations",
    "positive": "Non-negative codes",
}
HELP = {
    "lam": "Weight of the (group) sparsity penalty: larger means fewer active units/pools.",
    "l1": "Adds l1·Σ|z| on top of the group penalty; 0 gives pure group sparsity.",
    "encoder_decay": "Decoupled weight decay on the encoder M. It clears the input directions "
                     "that whitening leaves empty (they get no gradient), so encoder filters "
                     "look clean instead of noisy. 0 turns it off.",
}
MAX_UNITS = 48 * 48


def model_choice_ui() -> str:
    models = sorted(available_models())
    default = models.index("topographic") if "topographic" in models else 0
    return st.selectbox("Model", models, index=default, key="train_model", bind="query-params",
                        format_func=lambda m: f"{m}: {get_entry(m).description}")


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
    # a parent's own schedule rarely suits a short what-if; keep its model and data settings
    sections["train"] = {**defaults["train"], **{k: v for k, v in sections["train"].items()
                                                 if k in ("batch_size", "lr", "optimizer")}}
    return sections


def group_ui(base: dict[str, Any], locked: bool, k: str) -> tuple[dict[str, Any], GroupSpec | None]:
    """Group-structure widgets; returns the group dict and its validated spec (None + an error
    shown when the combination is impossible)."""
    rows0, cols0 = (int(v) for v in base.get("map_shape", (16, 16)))
    c1, c2, c3 = st.columns(3)
    rows = c1.number_input("Map rows", 1, 48, rows0, key=f"{k}_rows", bind="query-params", disabled=locked)
    cols = c2.number_input("Map columns", 1, 48, cols0, key=f"{k}_cols", bind="query-params", disabled=locked)
    kinds = list(POOL_KINDS) + ([base["kind"]] if base.get("kind") not in POOL_KINDS else [])
    kind = c3.selectbox("Pool type", kinds, index=kinds.index(base.get("kind", "neighbourhood")),
                        key=f"{k}_kind", bind="query-params", help="neighbourhood: overlapping k×k windows on the "
                        "map; blocks: non-overlapping k×k tiles; none: plain L1 (no groups).")
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
    try:
        spec = GroupSpec(kind=kind, map_shape=(int(rows), int(cols)), size=int(size),
                         stride=int(stride), wrap=bool(wrap), sigma=group["sigma"],
                         groups=tuple(tuple(g) for g in base.get("groups", ())))
    except ConfigError as exc:
        st.error(f"Impossible group structure: {exc}")
        return group, None
    if spec.n_units > MAX_UNITS:
        st.error(f"{spec.n_units} units is more than this app trains ({MAX_UNITS}).")
        return group, None
    return group, spec


def pool_preview_ui(spec: GroupSpec) -> None:
    P = spec.pool_matrix()
    rows, cols = spec.map_shape
    centre = (rows // 2) * cols + cols // 2
    example = int(np.argmax(P[:, centre]))
    st.plotly_chart(pool_preview_figure(pool_overlay(spec), pool_overlay(spec, example)),
                    key="train_pool_preview")
    st.caption(f"{spec.describe()}. Left: how many pools each unit is in; right: the pool "
               f"around the centre unit.")


def _input_for(name: str, tp: Any, value: Any, key: str, disabled: bool = False) -> Any:
    label, help_ = LABELS.get(name, name), HELP.get(name)
    if typing.get_origin(tp) is typing.Literal:
        options = list(typing.get_args(tp))
        return st.selectbox(label, options, index=options.index(value) if value in options
                            else 0, key=key, bind="query-params", help=help_, disabled=disabled)
    if tp is bool:
        return st.checkbox(label, bool(value), key=key, bind="query-params", help=help_, disabled=disabled)
    if tp is int:
        top = MAX_UNITS if name == "n_units" else 10_000
        return int(st.number_input(label, 0 if name == "seed" else 1, top, int(value), key=key,
                                   help=help_, disabled=disabled))
    if tp is float:
        return float(st.number_input(label, 0.0, None, float(value), format="%g",
                                     step=max(1e-4, abs(float(value)) / 10 or 0.01),
                                     key=key, bind="query-params", help=help_, disabled=disabled))
    return value  # a field the form does not edit keeps its value


def model_fields_ui(model: str, base: dict[str, Any], locked: bool, k: str) -> dict[str, Any]:
    """Widgets for the model's own settings (loss weights, inference, ...), by field type."""
    cls = get_entry(model).config_cls
    hints = typing.get_type_hints(cls)
    out = {}
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in ("input_shape", "group")]
    fields.sort(key=lambda n: (n not in ("lam", "l1", "alpha"), n == "seed"))
    cols = st.columns(3)
    for i, name in enumerate(fields):
        with cols[i % 3]:
            out[name] = _input_for(name, hints[name], base.get(name), f"{k}_m_{name}",
                                   disabled=locked and name == "n_units")
    return out


def data_ui(base: dict[str, Any], locked: bool, k: str) -> dict[str, Any]:
    c1, c2, c3, c4 = st.columns(4)
    sources = ["natural", "gratings", "folder"]
    source = c1.selectbox("Data", sources, index=sources.index(base.get("source", "natural")),
                          key=f"{k}_source", bind="query-params", help="natural: whitened patches of bundled photos; "
                          "gratings: synthetic oriented patterns; folder: your own images.")
    patch = c2.slider("Patch size (px)", 6, 24, int(base.get("patch_size", 12)),
                      key=f"{k}_patch", bind="query-params", disabled=locked)
    n = c3.number_input("Patches", 512, 200_000, int(base.get("n_patches", 20000)), 512,
                        key=f"{k}_npatches", bind="query-params")
    whitenings = ["olshausen", "zca", "none"]
    whitening = c4.selectbox("Whitening", whitenings,
                             index=whitenings.index(base.get("whitening", "olshausen")),
                             key=f"{k}_whitening", bind="query-params")
    out = {**base, "source": source, "patch_size": int(patch), "n_patches": int(n),
           "whitening": whitening}
    if source == "folder":
        out["folder"] = st.text_input("Image folder", base.get("folder") or "",
                                      key=f"{k}_folder", bind="query-params", placeholder="/path/to/images") or None
    return out


def train_settings_ui(base: dict[str, Any], k: str) -> dict[str, Any]:
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    steps = c1.number_input("Steps", 1, 100_000, int(base.get("steps", 2000)), 100,
                            key=f"{k}_steps", bind="query-params")
    batch = c2.number_input("Batch size", 1, 4096, int(base.get("batch_size", 256)),
                            key=f"{k}_batch", bind="query-params")
    lr = c3.number_input("Learning rate", 1e-6, 1.0, float(base.get("lr", 3e-3)), format="%g",
                         step=1e-4, key=f"{k}_lr", bind="query-params")
    seed = c4.number_input("Seed", 0, 1_000_000, int(base.get("seed", 0)), key=f"{k}_seed", bind="query-params")
    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    device = c5.selectbox("Device", devices, key=f"{k}_device", bind="query-params",
                          help="auto: CUDA when available, else CPU.")
    # One thread by default: these models are small, and on a busy 2-core machine two torch
    # threads fighting the web server for the cores train several times slower than one.
    threads = c6.number_input("CPU threads", 1, 64, int(base.get("threads") or 1),
                              key=f"{k}_threads", bind="query-params", help="torch threads for training on the CPU "
                              "(shared by the whole server process).")
    return {**base, "steps": int(steps), "batch_size": int(batch), "lr": float(lr),
            "seed": int(seed), "device": device, "threads": int(threads)}
