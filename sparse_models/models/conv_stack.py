"""Stacking conv models: a second layer on a first layer's pooled maps (`conv.py`'s docstring).

The only file-reading part of the conv model: a stacked config is fitted to its layer-1 run
(`fill_layer1_arch`), and a new stacked model copies that run's encoder, L2 pooling and decoder
into its own frozen parameters (`copy_layer1`). Afterwards the stacked run's own weights hold
all of it, so the layer-1 folder may go.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import ConfigError


def _layer1_dir(config: Any) -> Path:
    return Path(config.layer1).expanduser()


def _read_layer1(path: Path) -> Any:
    """The layer-1 run's config; ConfigError in words when it is missing or not a first layer."""
    from ..training.runs import RunError, read_run_config

    try:
        cfg = read_run_config(path)
    except RunError as exc:
        raise ConfigError(f"model.layer1: {path} is not a run folder ({exc})") from exc
    if cfg.model != "conv":
        raise ConfigError(f"model.layer1: {path} is a {cfg.model} run; a stacked conv model "
                          f"needs a conv run as its layer 1")
    if cfg.model_config.stacked:
        raise ConfigError(f"model.layer1: {path} is itself a stacked conv run; give a first "
                          f"layer (a conv run without model.layer1)")
    return cfg


def fill_layer1_arch(config: Any) -> Any:
    """`config` with `layer1_arch` = the layer-1 run's (K, k, pool_maps, pool_size, pool_stride)
    and `layer1` its absolute path. When the folder is gone, a config that already holds the
    shape (a saved stacked run) is kept as it is; ConfigError otherwise, or when the folder
    holds another model, a stacked run, or a first layer of another shape than recorded."""
    path = _layer1_dir(config)
    if not path.is_dir():
        if config.layer1_arch:
            return config
        raise ConfigError(f"model.layer1: no layer-1 run at {config.layer1}; train a conv "
                          f"model first (python -m sparse_models train conv) and give its "
                          f"folder")
    c1 = _read_layer1(path).model_config
    arch = (c1.maps, c1.kernel, c1.pool_maps, c1.pool_size, c1.pool_stride)
    if config.layer1_arch and tuple(config.layer1_arch) != arch:
        raise ConfigError(f"model.layer1: {path} now holds a layer 1 of shape {arch}, not the "
                          f"{tuple(config.layer1_arch)} this run was made with")
    return replace(config, layer1=str(path.resolve()), layer1_arch=arch)


@torch.no_grad()
def copy_layer1(model: Any) -> None:
    """Copy the layer-1 run's encoder (W, b, gain) and decoder D into `model`'s frozen W1, b1,
    gain1, D1 when its folder is there; else leave them for the model's saved weights."""
    path = _layer1_dir(model.config)
    if not path.is_dir():
        return
    from ..training.runs import RunError, load_run

    try:
        run = load_run(path)
    except RunError as exc:
        raise ConfigError(f"model.layer1: the layer-1 run cannot be loaded: {exc}") from exc
    if run.config.model != "conv" or run.model.config.stacked:
        raise ConfigError(f"model.layer1: {path} is not a first-layer conv run")
    src = run.model
    for mine, theirs in (("W1", src.W), ("b1", src.b), ("gain1", src.gain), ("D1", src.D)):
        p = getattr(model, mine)
        if p.shape != theirs.shape:
            raise ConfigError(f"model.layer1: its {mine[:-1]} has shape {tuple(theirs.shape)}, "
                              f"not {tuple(p.shape)}")
        p.copy_(theirs.detach())
    model.layer1_loaded.fill_(1.0)


@torch.no_grad()
def top_down_image(model: Any, v: torch.Tensor) -> torch.Tensor:
    """A stacked model's reconstructed (normalised) pooled maps v: (B, J1, Hp, Wp) taken down
    to images (B, 1, H, W): undo the scale, give every unit of a pool an equal share of its
    energy (p²/n each, the adjoint of the pooling's window sum), square root, layer 1's decoder.
    Pooling drops phase and the per-image means are gone, so this is a rough image."""
    K1, k1, g1, p1, s1 = model.config.layer1_arch
    h, w = model.config.input_shape
    hz, wz = h + k1 - 1, w + k1 - 1
    scale = float(model.in_scale) or 1.0
    energy = torch.relu(v / scale) ** 2 / (g1 * p1 * p1)  # (B, J1, Hp, Wp)
    ones = torch.ones(energy.shape[1], 1, p1, p1, dtype=v.dtype, device=v.device)
    spread = F.conv_transpose2d(energy, ones, stride=s1, groups=energy.shape[1])
    spread = F.pad(spread, (0, wz - spread.shape[-1], 0, hz - spread.shape[-2]))
    z1 = spread.sqrt().repeat_interleave(g1, dim=1)  # (B, K1, hz, wz)
    return F.conv_transpose2d(z1, model.D1, padding=k1 - 1)
