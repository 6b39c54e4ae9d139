"""A sheet of local receptive fields with no weight sharing, trained on whole images
(Gregor & LeCun 2010, arXiv:1006.0448; the PSD-style energy of Kavukcuoglu et al., CVPR 2009).

A grid of `rows × cols` positions lies over the (H, W) image every `stride` pixels; at each
position sit K units, each with its OWN r×r receptive field (nothing is shared between
positions, unlike a convolution). Energy, per image:

    E(x, z) = ½‖x − Dz‖² + λ Σ_j sqrt(Σ_{p∈P_j} w_p Σ_k z_{p,k}² + ε) + μ‖z‖₁,   z = F(x)
    F(x)    = g ⊙ shrink(M x, |b|)   (or g ⊙ relu(M x − |b|))

x: (B, H·W); z: (B, N) with N = rows·cols·K, unit i = p·K + k at position p = i // K (row-major);
M x: the locally connected layer, `unfold` the image into (B, r², L) patches and contract each
position's patch with that position's (K, r²) weights in one batched product;
Dz: its transpose, each unit's decoder filter put back at its position and summed (`fold`);
decoder filters are renormalised to unit length after each step.
Pools P_j are overlapping `pool_size × pool_size` neighbourhoods of positions every
`pool_stride` positions (all K units of each position), with Gaussian weights w_p of width
`pool_sigma`, wrapping around only when `pool_wrap`: the same windows as a `GroupSpec`
neighbourhood on the position grid. The penalty is computed without a (pools × units) matrix:
the per-position energy Σ_k z² is pooled by a 2-D convolution over the position grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check, check_ranges, setting
from ..groups import GroupSpec, _starts
from .base import Layout, SparseModel, register
from .penalties import shrink

MAX_UNITS = 65536  # units on one sheet (weights: 2 × units × r² floats)
MIN_SIDE = 8  # px: a smaller image holds no sheet worth the name
DENSE_POOLS = 4_000_000  # `pools()` materialises the (pools × units) matrix up to this many entries


def sheet_shape(side: tuple[int, int], r: int, s: int) -> tuple[int, int]:
    """Positions (rows, cols) of r×r receptive fields every s pixels on an (H, W) image."""
    return (side[0] - r) // s + 1, (side[1] - r) // s + 1


@dataclass(frozen=True)
class SheetConfig:
    input_shape: tuple[int, int] = setting((32, 32), label="Image (h, w)", form=False)  # from the data
    receptive_field: int = setting(8, label="Receptive field r (px)", min=2, max=32, shape=True,
                                   help="Side of each unit's own square receptive field.")
    stride: int = setting(2, label="Stride between positions (px)", min=1, max=32, shape=True,
                          help="Distance between neighbouring positions on the image.")
    per_position: int = setting(4, label="Units per position K", min=1, max=64, shape=True,
                                help="How many units (each with its own filter) sit at each "
                                     "position.")
    pool_size: int = setting(3, label="Pool size (positions)", min=1, max=32,
                             help="Side of the square neighbourhood of positions one pool covers "
                                  "(all K units at each of them).")
    pool_stride: int = setting(1, label="Pool stride (positions)", min=1, max=32,
                               help="Distance between neighbouring pools' centres.")
    pool_sigma: float | None = setting(1.0, label="Pool Gaussian σ (positions)", min=1e-3,
                                       max=100.0, help="Width of the pools' Gaussian weights; "
                                                       "none for uniform weights.")
    pool_wrap: bool = setting(False, label="Pools wrap around the sheet",
                              help="Whether neighbourhoods wrap around the sheet's edges (a "
                                   "torus); an image's sheet has edges, so off by default.")
    lam: float = setting(1.0, label="λ (group-sparsity weight)", min=0.0, max=100.0,
                         help="Weight of the pooled (L2) sparsity penalty.")
    l1: float = setting(0.3, label="Extra L1 weight μ (per unit)", min=0.0, max=100.0,
                        help="Adds μ·Σ|z| on top of the group penalty; 0: pure group sparsity.")
    encoder: Literal["shrink", "relu"] = setting(
        "shrink", label="Encoder nonlinearity",
        help="F(x) = g·shrink(Mx, |b|) (two-sided) or g·relu(Mx − |b|) (one-sided).")
    encoder_decay: float = setting(1.0, label="Encoder weight decay", min=0.0, max=100.0,
                                   help="Decoupled weight decay on the encoder: clears the input "
                                        "directions whitening leaves empty.")
    eps: float = setting(1e-4, label="ε inside each pool's square root", min=1e-12, max=1.0)
    seed: int = setting(0, label="Model seed (initial weights)", min=0, max=2**31 - 1)

    def __post_init__(self) -> None:
        check_ranges(self, "model.")
        check(len(self.input_shape) == 2, f"input_shape must be (h, w), got {self.input_shape!r}")
        h, w = (int(v) for v in self.input_shape)
        r, s = self.receptive_field, self.stride
        check(min(h, w) >= MIN_SIDE,
              f"images of {h}×{w} px are too small for a sheet: at least {MIN_SIDE}×{MIN_SIDE} px")
        check(r <= min(h, w),
              f"the receptive field ({r}×{r} px) is larger than the {h}×{w} image")
        rows, cols = sheet_shape((h, w), r, s)
        check(min(rows, cols) >= 2,
              f"a stride of {s} px leaves {rows}×{cols} position(s) for {r}×{r} receptive fields "
              f"on a {h}×{w} image; a sheet needs at least 2×2: lower the stride or the field")
        n = rows * cols * self.per_position
        check(n <= MAX_UNITS,
              f"{rows}×{cols} positions × {self.per_position} units = {n} units, above the "
              f"limit of {MAX_UNITS}: raise the stride, or use fewer units per position")
        check(self.pool_size <= min(rows, cols),
              f"pools of {self.pool_size}×{self.pool_size} positions do not fit the {rows}×{cols} "
              f"sheet")
        check(self.pool_stride <= self.pool_size,
              f"pool stride {self.pool_stride} is larger than the pool size {self.pool_size}: "
              f"some positions would be in no pool")

    @property
    def sheet(self) -> tuple[int, int]:
        return sheet_shape(tuple(self.input_shape), self.receptive_field, self.stride)

    def pool_starts(self) -> tuple[list[int], list[int]]:
        """First row and column (in positions) of each pool's window, as `GroupSpec` places them:
        every `pool_stride`, wrapping; without wrap the last window flush with the edge."""
        (rows, cols), k, s = self.sheet, self.pool_size, self.pool_stride
        if self.pool_wrap:
            return list(range(0, rows, s)), list(range(0, cols, s))
        return _starts(rows, k, s), _starts(cols, k, s)

    def position_pools(self) -> GroupSpec:
        """The pools as a `GroupSpec` neighbourhood on the position grid (for the dense matrix)."""
        return GroupSpec(kind="neighbourhood", map_shape=self.sheet, size=self.pool_size,
                         stride=self.pool_stride, wrap=self.pool_wrap, sigma=self.pool_sigma)


@register
class Sheet(SparseModel):
    name = "sheet"
    Config = SheetConfig
    description = ("Local receptive fields without weight sharing on a sheet over whole images, "
                   "pooled over neighbouring positions (pinwheels).")
    blurb = ("A sheet of positions over a whole image; each position holds several units, each "
             "with its own small receptive field (no weight sharing, unlike a convolution). "
             "Group sparsity pools the units of neighbouring positions (Gregor & LeCun 2010), "
             "so orientation should vary smoothly over the sheet and wind around **pinwheels**.")
    energy_latex = (r"E(x,z)=\tfrac12\lVert x-Dz\rVert^2+\lambda\sum_j\sqrt{\textstyle"
                    r"\sum_{p\in P_j}w_p\sum_k z_{p,k}^2}+\mu\lVert z\rVert_1,\quad z=F(x)")
    paper = ("Gregor & LeCun 2010, arXiv:1006.0448 (local receptive fields, no weight sharing); "
             "Kavukcuoglu, Ranzato, Fergus & LeCun, CVPR 2009")
    preset = {"data": {"source": "images", "crop": 32, "n_crops": 4000},
              "train": {"steps": 1000, "batch_size": 64, "lr": 3e-3}}
    tiny = {"data.source": "images", "data.crop": 12, "data.n_crops": 64,
            "data.images": ["camera"], "model.receptive_field": 4, "model.stride": 4,
            "model.per_position": 2, "model.pool_size": 2, "train.steps": 4,
            "train.batch_size": 16, "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: SheetConfig) -> None:
        super().__init__(config)
        rows, cols = config.sheet
        L, K, r = rows * cols, config.per_position, config.receptive_field
        g = torch.Generator().manual_seed(config.seed)
        D = torch.randn(L, K, r * r, generator=g)
        self.D = nn.Parameter(D / D.norm(dim=-1, keepdim=True))  # (L, K, r²) decoder filters
        self.M = nn.Parameter(self.D.detach().clone())  # (L, K, r²) encoder, starts tied
        self.b = nn.Parameter(torch.full((L * K,), 0.3))  # shrink thresholds (0 would not move)
        self.gain = nn.Parameter(torch.ones(L * K))
        self.register_buffer("pool_weights", torch.from_numpy(_window(config)))  # (1, 1, k, k)

    # --- the locally connected layer and its transpose -----------------------------------------
    def _image(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 1, *self.config.input_shape)

    def local(self, x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """Each position's patch against its own filters: (B, H·W), (L, K, r²) -> (B, L·K)."""
        c = self.config
        patches = F.unfold(self._image(x), c.receptive_field, stride=c.stride)  # (B, r², L)
        u = torch.einsum("bpl,lkp->blk", patches, W)
        return u.reshape(x.shape[0], -1)

    def local_transpose(self, z: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """The adjoint of `local`: every unit's filter put back at its position, summed:
        (B, L·K), (L, K, r²) -> (B, H·W)."""
        c = self.config
        L, K, _ = W.shape
        patches = torch.einsum("blk,lkp->bpl", z.reshape(z.shape[0], L, K), W)
        img = F.fold(patches, tuple(c.input_shape), c.receptive_field, stride=c.stride)
        return img.reshape(z.shape[0], -1)

    # --- the model ---------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        u = self.local(x, self.M)
        t = self.b.abs()
        s = shrink(u, t) if self.config.encoder == "shrink" else torch.relu(u - t)
        return self.gain * s

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.local_transpose(z, self.D)

    def group_penalty(self, z: torch.Tensor) -> torch.Tensor:
        """Σ_j sqrt(Σ_{p∈P_j} w_p Σ_k z_{p,k}² + ε) per sample, (B,): the per-position energy
        pooled by a convolution over the position grid, then the pools' windows picked."""
        c = self.config
        rows, cols = c.sheet
        k = c.pool_size
        e = (z * z).reshape(z.shape[0], 1, rows, cols, c.per_position).sum(-1)  # (B, 1, R, C)
        if c.pool_wrap:
            e = F.pad(e, (0, k - 1, 0, k - 1), mode="circular")
        rs, cs = c.pool_starts()
        pooled = F.conv2d(e, self.pool_weights)[:, 0]  # every window, stride 1
        pooled = pooled[:, rs][:, :, cs]  # (B, J_r, J_c): the pools' windows
        return torch.sqrt(pooled + c.eps).flatten(1).sum(-1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        c = self.config
        z = self.encode(x)
        r = x - self.decode(z)
        terms = {"reconstruction": 0.5 * (r * r).sum(-1).mean(),
                 "group_sparsity": c.lam * self.group_penalty(z).mean()}
        if c.l1 > 0:
            terms["l1"] = c.l1 * z.abs().sum(-1).mean()
        terms["loss"] = sum(terms.values())
        return terms

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": [self.M], "lr": lr, "weight_decay": self.config.encoder_decay},
                {"params": [self.D, self.b, self.gain], "lr": lr, "weight_decay": 0.0}]

    @torch.no_grad()
    def constrain(self) -> None:
        self.D.div_(self.D.norm(dim=-1, keepdim=True).clamp_min(1e-12))

    # --- what it declares --------------------------------------------------------------------
    @property
    def n_units(self) -> int:
        rows, cols = self.config.sheet
        return rows * cols * self.config.per_position

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w = self.config.input_shape
        return (1, int(h), int(w))

    @classmethod
    def adapt_config(cls, config: SheetConfig, input_shape: tuple[int, int, int]) -> SheetConfig:
        c, h, w = input_shape
        if c != 1:
            raise ConfigError(f"the sheet learns from grey images; this data has {c} channels")
        if tuple(config.input_shape) == (h, w):
            return config
        return replace(config, input_shape=(int(h), int(w)))  # __post_init__ says what won't fit

    @property
    def layout(self) -> Layout:
        return Layout("sheet", self.config.sheet, wrap=self.config.pool_wrap,
                      per_position=self.config.per_position)

    @classmethod
    def summarize_config(cls, config: SheetConfig) -> str:
        rows, cols = config.sheet
        r = config.receptive_field
        return (f"{rows}×{cols} sheet × {config.per_position}, {r}×{r} fields every "
                f"{config.stride} px, {config.pool_size}×{config.pool_size} pools, λ={config.lam:g}")

    @property
    def has_pools(self) -> bool:
        return True  # always pooled; `pools()` is None only where the matrix would be large

    def pools(self) -> torch.Tensor | None:
        """The dense pool matrix (J, N) (each position's weight repeated over its K units) when
        it holds at most `DENSE_POOLS` entries, else None: the penalty itself never uses it."""
        rs, cs = self.config.pool_starts()
        if len(rs) * len(cs) * self.n_units > DENSE_POOLS:
            return None
        spec = self.config.position_pools()
        P = torch.from_numpy(spec.pool_matrix())  # (J, L)
        return P.repeat_interleave(self.config.per_position, dim=1)

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        """Each unit's r×r receptive field (N, 1, r, r), unit order as the layout's."""
        self.check_filter_kind(kind)
        r = self.config.receptive_field
        W = self.D if kind == "decoder" else self.M
        return W.detach().cpu().reshape(self.n_units, 1, r, r)


def _window(config: SheetConfig) -> np.ndarray:
    """The pools' k×k weights as a conv kernel (1, 1, k, k): GroupSpec's Gaussian (or ones)."""
    k = config.pool_size
    offs = np.arange(k) - (k - 1) / 2.0
    w1 = np.ones(k) if config.pool_sigma is None else np.exp(-offs**2 / (2 * config.pool_sigma**2))
    return np.outer(w1, w1).astype(np.float32)[None, None]
