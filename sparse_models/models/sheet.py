"""A sheet of local receptive fields with no weight sharing, trained on whole images
(Gregor & LeCun 2010, arXiv:1006.0448; the PSD-style energy of Kavukcuoglu et al., CVPR 2009).

A grid of `rows × cols` positions lies over the (H, W) image every `stride` pixels; at each
position sit K = a·b units (an a×b block, as square as K allows), each with its OWN r×r
receptive field: nothing is shared between positions, unlike a convolution. The blocks tile one
map of (rows·a) × (cols·b) units, so neighbouring units on the map either share a position or
sit at neighbouring ones: the map is retinotopic, with a/stride units per pixel. Energy, per
image:

    E(x, z) = ½‖x − Dz‖² + λ Σ_j sqrt(Σ_{i∈P_j} w_i z_i² + ε) + μ‖z‖₁,   z = F(x)
    F(x)    = g ⊙ shrink(M x, |b|)   (or g ⊙ relu(M x − |b|))

x: (B, H·W); z: (B, N), unit i = cell i of the unit map, row-major;
M x: the locally connected layer, `unfold` the image into (B, r², L) patches and contract each
position's patch with that position's (K, r²) weights in one batched product;
Dz: its transpose, each unit's decoder filter put back at its position and summed (`fold`);
decoder filters are renormalised to unit length after each step. Every `revive_every` steps (up
to `revive_until`) a unit that fired on no image since the last check starts again as a slightly
perturbed copy of a live neighbour in its own block: a silent unit gets no gradient, so it would
keep its random filter, a speck of random orientation on the map.
With `smooth_retinotopy` (the default) the fields of a block are shifted inside their position by their place
in the block (round(i·s/a) px, `block_offsets`), so a field moves s/a pixels per step on the map
everywhere, as receptive fields drift smoothly across cortex, instead of a block's units all
looking at one place; each position then holds (r + s − 1)-pixel windows, each unit's weights
kept on its own field by a mask.
Pools P_j are overlapping `pool_size × pool_size` neighbourhoods of the unit map (units and
positions together) every `pool_stride` units, with Gaussian weights w_i of width `pool_sigma`,
wrapping around only when `pool_wrap`: the same windows as a `GroupSpec` neighbourhood on that
map. The penalty is computed without a (pools × units) matrix, which would grow as the square of
the sheet: the map of z² is pooled by a 2-D convolution.

Why pinwheels: a pool asks nearby units to be active together, so they learn similar
orientations (with different phases and positions); and every small patch of image must still be
reconstructed by the units whose fields cover it, so within a field's reach on the map all
orientations must appear. Smoothness against coverage gives a map whose orientation repeats
within about a field's width and winds around pinwheels (Gregor & LeCun 2010, figure 4 of the
lecture). Smooth retinotopy is the default: with all of a block's units at one place, each block
wound once round its centre, a lattice of one pinwheel a position at about 5 per Λ², where with
fields that drift evenly the pinwheels fall anywhere, at about π per Λ² as in the cortex.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, check, check_ranges, setting
from ..groups import GroupSpec, window_starts
from .base import (
    Layout,
    RevivesSilentUnits,
    SparseModel,
    clear_optimizer_state,
    register,
    square_shape,
)
from .penalties import shrink
from .sheet_ops import (
    aperture,
    apply_runs,
    block_offsets,
    field_pixels,
    sheet_gradients,
    sheet_shape,
    unit_masks,
    window_matrices,
    window_runs,
)

MAX_UNITS = 65536  # units on one sheet (weights: 2 × units × r² floats)
MIN_SIDE = 8  # px: a smaller image holds no sheet worth the name
DENSE_POOLS = 4_000_000  # `pools()` materialises the (pools × units) matrix up to this many entries


@dataclass(frozen=True)
class SheetConfig:
    input_shape: tuple[int, int] = setting((32, 32), label="Image (h, w)", form=False)  # from the data
    receptive_field: int = setting(8, label="Receptive field r (px)", min=2, max=32, shape=True,
                                   help="Side of each unit's own square receptive field.")
    stride: int = setting(4, label="Stride between positions (px)", min=1, max=32, shape=True,
                          help="Distance between neighbouring positions on the image.")
    per_position: int = setting(36, label="Units per position K", min=1, max=64, shape=True,
                                help="How many units (each with its own filter) sit at each "
                                     "position; they are drawn as a block (2×2 for 4), so a "
                                     "square K keeps the map the same in both directions.")
    pool_size: int = setting(5, label="Pool size (map units)", min=1, max=32,
                             help="Side of the square neighbourhood of the unit map one pool "
                                  "covers (units of one and of neighbouring positions).")
    pool_stride: int = setting(1, label="Pool stride (map units)", min=1, max=32,
                               help="Distance between neighbouring pools' centres.")
    pool_sigma: float | None = setting(1.5, label="Pool Gaussian σ (map units)", min=1e-3,
                                       max=100.0, help="Width of the pools' Gaussian weights; "
                                                       "none for uniform weights.")
    pool_wrap: bool = setting(False, label="Pools wrap around the sheet",
                              help="Whether neighbourhoods wrap around the sheet's edges (a "
                                   "torus); an image's sheet has edges, so off by default.")
    lam: float = setting(0.6, label="λ (group-sparsity weight)", min=0.0, max=100.0,
                         help="Weight of the pooled (L2) sparsity penalty.")
    l1: float = setting(0.1, label="Extra L1 weight μ (per unit)", min=0.0, max=100.0,
                        help="Adds μ·Σ|z| on top of the group penalty; 0: pure group sparsity.")
    encoder: Literal["shrink", "relu"] = setting(
        "shrink", label="Encoder nonlinearity",
        help="F(x) = g·shrink(Mx, |b|) (two-sided) or g·relu(Mx − |b|) (one-sided).")
    encoder_decay: float = setting(1.0, label="Encoder weight decay", min=0.0, max=100.0,
                                   help="Decoupled weight decay on the encoder: clears the input "
                                        "directions whitening leaves empty.")
    zero_mean: bool = setting(
        True, label="Zero-mean filters",
        help="Keep every filter's pixels summing to zero, so units code local contrast, not local "
             "brightness (a patch model's filters are zero-mean because its patches are). Off, "
             "some units learn unoriented blobs that follow the local mean.")
    round_fields: bool = setting(
        True, label="Round receptive fields",
        help="Keep only the pixels within the disc inscribed in each r×r field. A square field's "
             "edges favour horizontal and vertical filters; a round one treats every "
             "orientation alike.")
    smooth_retinotopy: bool = setting(
        True, label="Smooth retinotopy", shape=True,
        help="Shift each unit's field inside its position by its place in the block "
             "(round(i·stride/a) px), so fields move smoothly across the whole map instead of "
             "jumping from one block to the next; each position then looks through a window "
             "stride − 1 px larger than the field.")
    # A unit whose field never drives it past its threshold gets no gradient and keeps its random
    # start for good: on the map it is a speck of random orientation among smooth domains.
    revive_every: int = setting(
        100, label="Revive silent units every (steps)", min=0, max=1_000_000,
        help="Every this many training steps, each unit that fired on no image since the last "
             "check starts again as a slightly perturbed copy of a live neighbour on the map at "
             "its own position (same window); its neighbours' orientation, not a random one. "
             "0 turns it off.")
    revive_until: int = setting(
        2100, label="Revive until step", min=0, max=10_000_000,
        help="Silent units are revived only up to this training step, so that the map can "
             "settle afterwards.")
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
        win = self.window
        check(win <= min(h, w),
              f"with smooth retinotopy each position looks through a {win}×{win} px window "
              f"(the {r} px field and its shifts of up to {win - r} px), larger than the "
              f"{h}×{w} image: lower the field or the stride")
        rows, cols = sheet_shape((h, w), win, s)
        what = f"{r}×{r} receptive fields" if win == r else f"{win}×{win} px windows"
        check(min(rows, cols) >= 2,
              f"a stride of {s} px leaves {rows}×{cols} position(s) for {what} "
              f"on a {h}×{w} image; a sheet needs at least 2×2: lower the stride or the field")
        n = rows * cols * self.per_position
        check(n <= MAX_UNITS,
              f"{rows}×{cols} positions × {self.per_position} units = {n} units, above the "
              f"limit of {MAX_UNITS}: raise the stride, or use fewer units per position")
        mr, mc = self.unit_map
        check(self.pool_size <= min(mr, mc),
              f"pools of {self.pool_size}×{self.pool_size} units do not fit the {mr}×{mc} map of "
              f"units")
        check(self.pool_stride <= self.pool_size,
              f"pool stride {self.pool_stride} is larger than the pool size {self.pool_size}: "
              f"some positions would be in no pool")

    @property
    def sheet(self) -> tuple[int, int]:
        """(rows, cols) positions."""
        return sheet_shape(tuple(self.input_shape), self.window, self.stride)

    @property
    def offsets(self) -> tuple[list[int], list[int]]:
        """Each block row's and column's shift of the field inside the window, in pixels (all 0
        without smooth retinotopy)."""
        a, b = self.block
        if not self.smooth_retinotopy:
            return [0] * a, [0] * b
        return block_offsets(a, self.stride), block_offsets(b, self.stride)

    @property
    def window(self) -> int:
        """Side of the square of image each position's units look through: the field, plus the
        largest shift of a field inside it."""
        rows_off, cols_off = self.offsets
        return self.receptive_field + max(rows_off + cols_off)

    @property
    def block(self) -> tuple[int, int]:
        """(a, b): how one position's K units are drawn on the unit map."""
        return square_shape(self.per_position)

    @property
    def unit_map(self) -> tuple[int, int]:
        """(rows·a, cols·b): the map of all units."""
        (rows, cols), (a, b) = self.sheet, self.block
        return rows * a, cols * b

    def pool_starts(self) -> tuple[list[int], list[int]]:
        """First row and column (in map units) of each pool's window, as `GroupSpec` places
        them (`groups.window_starts`): without wrap from −(k−1), hanging over the edges."""
        (rows, cols), k, s = self.unit_map, self.pool_size, self.pool_stride
        return (window_starts(rows, k, s, self.pool_wrap),
                window_starts(cols, k, s, self.pool_wrap))

    def map_pools(self) -> GroupSpec:
        """The pools as a `GroupSpec` neighbourhood on the unit map (for the dense matrix)."""
        return GroupSpec(kind="neighbourhood", map_shape=self.unit_map, size=self.pool_size,
                         stride=self.pool_stride, wrap=self.pool_wrap, sigma=self.pool_sigma)


@register
class Sheet(RevivesSilentUnits, SparseModel):
    name = "sheet"
    Config = SheetConfig
    description = ("Local receptive fields without weight sharing on a sheet over whole images, "
                   "pooled over neighbouring positions (pinwheels).")
    blurb = ("A sheet of positions over a whole image; each position holds a block of units, "
             "each with its own small receptive field (no weight sharing, unlike a "
             "convolution). The blocks tile one map on which each unit's field sits a fraction "
             "of a pixel from its neighbours' (smooth retinotopy); group sparsity pools neighbourhoods of that map (Gregor & "
             "LeCun 2010), so orientation varies smoothly over it and winds around "
             "**pinwheels**, repeating within about a receptive field's width.")
    energy_latex = (r"E(x,z)=\tfrac12\lVert x-Dz\rVert^2+\lambda\sum_j\sqrt{\textstyle"
                    r"\sum_{i\in P_j}w_i z_i^2}+\mu\lVert z\rVert_1,\quad z=F(x)")
    paper = ("Gregor & LeCun 2010, arXiv:1006.0448 (local receptive fields, no weight sharing); "
             "Kavukcuoglu, Ranzato, Fergus & LeCun, CVPR 2009")
    preset = {"data": {"source": "images", "crop": 36, "n_crops": 10000, "rotations": 6},
              "train": {"steps": 2700, "batch_size": 256, "lr": 2e-2}}
    tiny = {"data.source": "images", "data.crop": 12, "data.n_crops": 64,
            "data.images": ["camera"], "model.receptive_field": 4, "model.stride": 4,
            "model.per_position": 2, "model.pool_size": 2, "train.steps": 4,
            "train.batch_size": 16, "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: SheetConfig) -> None:
        super().__init__(config)
        rows, cols = config.sheet
        L, K, r = rows * cols, config.per_position, config.window
        g = torch.Generator().manual_seed(config.seed)
        field = aperture(config)  # (r², ) 0/1: the pixels of one field
        self.register_buffer("aperture", torch.from_numpy(field))
        # (K, w²) 0/1: each of a position's units' field in its window (the field itself
        # without smooth retinotopy)
        self.register_buffer("masks", torch.from_numpy(unit_masks(config, field)),
                             persistent=False)
        self.register_buffer("pixels", field_pixels(config), persistent=False)  # (L, r²)
        D = torch.randn(L, K, r * r, generator=g) * self.masks
        self.D = nn.Parameter(D / D.norm(dim=-1, keepdim=True))  # (L, K, r²) decoder filters
        self.M = nn.Parameter(self.D.detach().clone())  # (L, K, r²) encoder, starts tied
        self.constrain()  # the aperture, zero mean and unit length from the start
        self.b = nn.Parameter(torch.full((L * K,), 0.3))  # shrink thresholds (0 would not move)
        self.gain = nn.Parameter(torch.ones(L * K))
        # the pools' windows are separable (a k×k window is the outer product of a k-window on
        # the rows and one on the columns), so pooling is two small matrix products
        rows_w, cols_w = window_matrices(config)
        self.register_buffer("pool_rows", torch.from_numpy(rows_w))  # (J_r, R)
        self.register_buffer("pool_cols", torch.from_numpy(cols_w))  # (J_c, C)
        # the same windows as shifted adds, for the training step: a window touches k units, so
        # k strided adds per side cost less than the products with the mostly empty matrices
        (rs, cs), k = config.pool_starts(), config.pool_size
        self._row_runs = window_runs(rows_w, rs, k, config.pool_stride, config.pool_wrap)
        self._col_runs = window_runs(cols_w, cs, k, config.pool_stride, config.pool_wrap)
        self.init_revival((L, K))  # which of a position's units fired (`revive`)

    # --- the locally connected layer and its transpose -----------------------------------------
    def _image(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 1, *self.config.input_shape)

    def to_map(self, u: torch.Tensor) -> torch.Tensor:
        """(B, L, K) per position -> (B, N) in unit-map order (row-major over the map)."""
        (rows, cols), (a, b) = self.config.sheet, self.config.block
        return u.reshape(-1, rows, cols, a, b).permute(0, 1, 3, 2, 4).reshape(u.shape[0], -1)

    def from_map(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N) in unit-map order -> (B, L, K) per position: the inverse of `to_map`."""
        (rows, cols), (a, b) = self.config.sheet, self.config.block
        return z.reshape(-1, rows, a, cols, b).permute(0, 1, 3, 2, 4).reshape(
            z.shape[0], rows * cols, a * b)

    def local(self, x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """Each position's patch against its own filters: (B, H·W), (L, K, r²) -> (B, N)."""
        c = self.config
        patches = F.unfold(self._image(x), c.window, stride=c.stride)  # (B, w², L)
        if W.shape[1] == 1:  # one unit per position: a product and a sum beat L tiny matmuls
            return self.to_map((patches * W[:, 0].T).sum(1).unsqueeze(-1))
        # one batched product over positions; contiguous operands keep it a single BLAS call
        u = torch.bmm(patches.permute(2, 0, 1).contiguous(), W.transpose(1, 2).contiguous())
        return self.to_map(u.transpose(0, 1))  # (L, B, K) -> (B, N)

    def local_transpose(self, z: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """The adjoint of `local`: every unit's filter put back at its position, summed:
        (B, N), (L, K, r²) -> (B, H·W)."""
        c = self.config
        zl = self.from_map(z)  # (B, L, K)
        if W.shape[1] == 1:
            patches = zl[:, :, 0].unsqueeze(1) * W[:, 0].T  # (B, r², L)
        else:
            patches = torch.bmm(zl.transpose(0, 1).contiguous(), W).permute(1, 2, 0)
        img = F.fold(patches, tuple(c.input_shape), c.window, stride=c.stride)
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
        """Σ_j sqrt(Σ_{i∈P_j} w_i z_i² + ε) per sample, (B,): the map of z² pooled along its rows
        and its columns by two matrix products (A_r · z² · A_cᵀ), with no (pools × units)
        matrix."""
        e = (z * z).reshape(z.shape[0], *self.config.unit_map)  # (B, R, C)
        pooled = self.pool_rows @ e @ self.pool_cols.T  # (B, J_r, J_c)
        return torch.sqrt(pooled + self.config.eps).flatten(1).sum(-1)

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

    def gradients(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The loss terms, with the gradients computed by hand (`sheet_gradients`): the same as
        backprop through `loss`, at a fraction of the cost."""
        terms, grads = sheet_gradients(self, x)
        for param, grad in zip((self.M, self.D, self.b, self.gain), grads, strict=True):
            param.grad = grad
        return terms

    def revive_silent(self, x: torch.Tensor, dead: torch.Tensor, optimizer: Any) -> None:
        self.revive(dead, optimizer)

    @torch.no_grad()
    def revive(self, dead: torch.Tensor, optimizer: Any = None,
               noise: float = 0.1) -> list[tuple[int, int]]:
        """Start each unit marked in `dead` (L, K) bool again as a copy of a live unit next to
        it on the map within its own position's block (so the same window of the image; any
        live unit of that position when none is next to it): its encoder and decoder filters
        plus Gaussian noise of `noise` × their norm (then the usual constraints), its
        threshold and gain. Its optimiser state is cleared; a position with no live unit is
        left alone. Returns the revived (position, unit) pairs."""
        a, b = self.config.block
        live = ~dead
        g = torch.Generator().manual_seed(self.config.seed * 7919 + self._steps)
        done: list[tuple[int, int]] = []
        for pos, k in dead.nonzero().tolist():
            ka, kb = divmod(k, b)
            near = [i * b + j for i in range(max(ka - 1, 0), min(ka + 2, a))
                    for j in range(max(kb - 1, 0), min(kb + 2, b)) if live[pos, i * b + j]]
            pool = near or live[pos].nonzero().squeeze(1).tolist()
            if not pool:
                continue
            src = pool[int(torch.randint(len(pool), (1,), generator=g))]
            for W in (self.D, self.M):
                n = torch.randn(W.shape[-1], generator=g).to(W) * self.masks[k]
                W[pos, k] = W[pos, src] + noise * W[pos, src].norm() * n / n.norm().clamp_min(1e-12)
            i, j = self.map_index(pos, k), self.map_index(pos, src)
            self.b[i], self.gain[i] = self.b[j], self.gain[j]
            done.append((pos, k))
        if not done:
            return done
        self.constrain()
        ls, ks = (torch.tensor(v) for v in zip(*done, strict=True))
        idx = torch.tensor([self.map_index(pos, k) for pos, k in done])
        clear_optimizer_state(optimizer, [(self.M, (ls, ks)), (self.D, (ls, ks)), (self.b, idx),
                                          (self.gain, idx)])
        return done

    def map_index(self, pos: int, k: int) -> int:
        """Where unit k of position pos sits in unit-map order (row-major over the map)."""
        (_, cols), (a, b) = self.config.sheet, self.config.block
        (pr, pc), (ka, kb) = divmod(pos, cols), divmod(k, b)
        return (pr * a + ka) * (cols * b) + pc * b + kb

    def per_position_column(self, v: torch.Tensor) -> torch.Tensor:
        """(N,) in unit-map order -> (L, K, 1), for batch-last codes."""
        return self.from_map(v.unsqueeze(0))[0].unsqueeze(-1)

    def pool_sum(self, e: torch.Tensor) -> torch.Tensor:
        """Σ_{i∈P_j} w_i e_i for e on the unit map, batch last: (R, C, B) -> (J_r, J_c, B)."""
        e = apply_runs(e, self._row_runs, self.pool_rows.shape[0], 0)
        return apply_runs(e, self._col_runs, self.pool_cols.shape[0], 1)

    def pool_sum_transpose(self, q: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The adjoint of `_pool`, into out: (J_r, J_c, B) -> (R, C, B)."""
        q = apply_runs(q, self._col_runs, out.shape[1], 1, adjoint=True)
        return apply_runs(q, self._row_runs, out.shape[0], 0, adjoint=True, out=out)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": [self.M], "lr": lr, "weight_decay": self.config.encoder_decay},
                {"params": [self.D, self.b, self.gain], "lr": lr, "weight_decay": 0.0}]

    @torch.no_grad()
    def constrain(self) -> None:
        ap = self.masks
        for W in (self.D, self.M):
            W.mul_(ap)
            if self.config.zero_mean:  # mean over the aperture's pixels only
                W.sub_(ap * (W.sum(dim=-1, keepdim=True) / ap.sum(dim=-1, keepdim=True)))
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
        c = self.config
        return Layout("sheet", c.sheet, wrap=c.pool_wrap, per_position=c.per_position,
                      stride_px=c.stride, field_px=c.window)

    @classmethod
    def summarize_config(cls, config: SheetConfig) -> str:
        (rows, cols), (mr, mc) = config.sheet, config.unit_map
        r = config.receptive_field
        smooth = ", smooth retinotopy" if config.smooth_retinotopy else ""
        return (f"{rows}×{cols} positions × {config.per_position} = {mr}×{mc} map, {r}×{r} fields "
                f"every {config.stride} px{smooth}, {config.pool_size}×{config.pool_size} pools, "
                f"λ={config.lam:g}")

    @property
    def has_pools(self) -> bool:
        return True  # always pooled; `pools()` is None only where the matrix would be large

    def pools(self) -> torch.Tensor | None:
        """The dense pool matrix (J, N) on the unit map when it holds at most `DENSE_POOLS`
        entries, else None: the penalty itself never uses it."""
        rs, cs = self.config.pool_starts()
        if len(rs) * len(cs) * self.n_units > DENSE_POOLS:
            return None
        return torch.from_numpy(self.config.map_pools().pool_matrix())

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        """Each unit's window (N, 1, w, w), in unit-map order (the layout's): its r×r field,
        shifted inside the window with smooth retinotopy (w = r otherwise)."""
        self.check_filter_kind(kind)
        r = self.config.window
        (rows, cols), (a, b) = self.config.sheet, self.config.block
        W = (self.D if kind == "decoder" else self.M).detach().cpu()  # (L, K, r²)
        W = W.reshape(rows, cols, a, b, r * r).permute(0, 2, 1, 3, 4)  # unit-map order
        return W.reshape(self.n_units, 1, r, r)
