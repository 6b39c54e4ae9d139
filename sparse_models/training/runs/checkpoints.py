"""Tensor files of a run: weights, resumable checkpoints and filter snapshots (safetensors).

Also the one check of whether saved tensors fit a model (`check_weights_fit`), used by loading,
resuming and what-if starts alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from ...models.base import SparseModel
from .format import CHECKPOINT_FILE, FORMAT, SNAPSHOTS_FILE, RunError


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the metadata of a safetensors file; RunError if broken."""
    if not path.is_file():
        raise RunError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers/data
        raise RunError(f"{path} is corrupt or truncated (not a readable safetensors file: "
                       f"{exc})") from exc
    return tensors, meta


def _check_safetensors_header(path: Path) -> None:
    """Cheap validity check (header only, no tensor data read); RunError if broken."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            f.metadata()
    except Exception as exc:
        raise RunError(f"{path} is corrupt or truncated ({exc})") from exc


def _tensors_for_saving(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory (e.g. tied weights, views)
    return {prefix + k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def check_weights_fit(model: SparseModel, state: dict[str, torch.Tensor], source: Path | str,
                      only: Iterable[str] | None = None) -> None:
    """The one check of whether saved tensors fit a model: RunError naming `source` unless
    `state` has exactly the model's tensors (or exactly those named in `only`, e.g. its
    parameters for a what-if start), each of the model's shape and holding finite numbers."""
    want = model.state_dict()
    names = set(want) if only is None else set(only)
    have = set(state) if only is None else set(state) & names | (set(state) - set(want))
    missing = sorted(names - set(state))
    extra = sorted(have - names)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise RunError(f"{source} does not fit the {model.name!r} model of this config: "
                       + "; ".join(parts))
    for k in sorted(names):
        if tuple(state[k].shape) != tuple(want[k].shape):
            raise RunError(f"{source}: {k} has shape {tuple(state[k].shape)} but this config "
                           f"needs {tuple(want[k].shape)}; change the model size back or "
                           f"start fresh")
        if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all()):
            raise RunError(f"{source}: {k} holds NaN or infinite values; the weights are "
                           f"damaged")


@dataclass
class Checkpoint:
    step: int
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]  # a torch optimiser state_dict, ready for load_state_dict
    rng: dict[str, torch.Tensor]  # "torch" and "cuda.N" generator states
    extra: dict[str, Any]  # pipeline bookkeeping, e.g. elapsed_s


def read_checkpoint(run_dir: Path) -> Checkpoint:
    path = Path(run_dir) / CHECKPOINT_FILE
    tensors, meta = _read_safetensors(path)
    try:
        return _checkpoint(tensors, meta)
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise RunError(f"{path} has no valid checkpoint metadata ({type(exc).__name__}); the "
                       f"checkpoint is damaged") from exc


def _checkpoint(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Checkpoint:
    step = int(meta["step"])
    opt_meta = json.loads(meta["optimizer"])
    extra = json.loads(meta.get("extra", "{}"))
    if not isinstance(opt_meta, dict) or not isinstance(extra, dict):
        raise ValueError("metadata is not a mapping")
    model_state, rng, opt_tensors = {}, {}, {}
    for k, v in tensors.items():
        kind, _, rest = k.partition(".")
        if kind == "model":
            model_state[rest] = v
        elif kind == "rng":
            rng[rest] = v
        elif kind == "optimizer":
            opt_tensors[rest] = v
    state: dict[int, dict[str, Any]] = {}
    for k, v in opt_tensors.items():
        idx, _, name = k.partition(".")
        state.setdefault(int(idx), {})[name] = v
    for idx, values in opt_meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    optimizer_state = {"state": state, "param_groups": list(opt_meta["param_groups"])}
    return Checkpoint(step, model_state, optimizer_state, rng, extra)


def _meta(kind: str, **more: Any) -> dict[str, str]:
    return {"format": FORMAT, "kind": kind, **{k: str(v) for k, v in more.items()}}


def read_snapshots(run_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """`(steps: (S,) int64, filters: (S, N, C, h, w) float32, kind)`; RunError if the file is
    broken. Files of format 1 held single-channel decoder filters `(S, N, h, w)`."""
    path = Path(run_dir) / SNAPSHOTS_FILE
    tensors, meta = _read_safetensors(path)
    if "steps" not in tensors or "filters" not in tensors:
        raise RunError(f"{path} holds no 'steps' and 'filters' tensors")
    steps, filters = tensors["steps"].numpy(), tensors["filters"].float().numpy()
    if filters.ndim == 4:
        filters = filters[:, :, None]
    if filters.ndim != 5 or len(steps) != len(filters):
        raise RunError(f"{path}: {len(steps)} steps but filters of shape {filters.shape}")
    return steps.astype(np.int64), filters.astype(np.float32), meta.get("filter_kind", "decoder")


def restore_rng(rng: dict[str, torch.Tensor]) -> None:
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        for k, v in rng.items():
            if k.startswith("cuda."):
                i = int(k.split(".")[1])
                if i < torch.cuda.device_count():
                    torch.cuda.set_rng_state(v, i)


