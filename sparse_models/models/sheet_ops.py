"""The sheet's geometry and its hand-written training step, as standalone functions (the model
and its energy: `sheet.py`; Gregor & LeCun 2010, arXiv:1006.0448).

- where positions lie on the image (`sheet_shape`), where a block's fields sit inside a position's
  window (`block_offsets`), each field's pixels (`aperture`, `unit_masks`) and their places in the
  flattened image (`field_pixels`);
- the pools' separable windows along the unit map's rows and columns (`window_matrices`), and the
  same windows as runs of strided adds (`window_runs`, `apply_runs`);
- `sheet_gradients`: the loss terms and their gradients computed by hand, equal to backprop
  through `Sheet.loss` (tested) at a fraction of its cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..groups import window_matrix

if TYPE_CHECKING:
    from .sheet import Sheet, SheetConfig


def sheet_shape(side: tuple[int, int], r: int, s: int) -> tuple[int, int]:
    """Positions (rows, cols) of r×r windows every s pixels on an (H, W) image."""
    return (side[0] - r) // s + 1, (side[1] - r) // s + 1


def block_offsets(a: int, s: int) -> list[int]:
    """Where the fields of a block's a rows (or columns) of units sit inside their position's
    window, in pixels: round(i·s/a), so that walking across the map moves the field s/a pixels a
    step, the same inside a block as from one block to the next."""
    return [int(round(i * s / a)) for i in range(a)]


def field_pixels(config: SheetConfig) -> torch.Tensor:
    """(L, w²) long: where each position's w×w window pixels lie in the flattened (H, W) image,
    positions and pixels row-major (`F.unfold`'s order): image.flatten()[field_pixels] are the
    patches, `index_add_` at them is `F.fold`."""
    (rows, cols), r, s, w = config.sheet, config.window, config.stride, config.input_shape[1]
    top = (torch.arange(rows) * s * w).view(-1, 1, 1) + (torch.arange(cols) * s).view(1, -1, 1)
    inner = (torch.arange(r) * w).view(-1, 1) + torch.arange(r).view(1, -1)
    return (top + inner.flatten()).view(rows * cols, r * r)


def window_runs(A: np.ndarray, starts: list[int], k: int, s: int,
                wrap: bool) -> list[tuple[float, slice, slice]]:
    """The 1-D pool windows A: (J, n) (`groups.window_matrix`, windows at `starts`) as runs
    (w, windows j0:j1, units i0:i1:s): each window of the run adds w × its unit, the unit
    moving on by s from one window to the next, so A·e = Σ_runs w · e[units] added onto the
    rows `windows` (`apply_runs`)."""
    J, n = A.shape
    runs: list[list] = []  # [w, j0, i0, count]
    for t in range(k):
        for j, r0 in enumerate(starts):
            i = (r0 + t) % n if wrap else r0 + t
            if not 0 <= i < n:
                continue
            w = float(A[j, i])
            last = runs[-1] if runs else None
            if last and last[0] == w and last[1] + last[3] == j and last[2] + s * last[3] == i:
                last[3] += 1
            else:
                runs.append([w, j, i, 1])
    return [(w, slice(j, j + c), slice(i, i + s * (c - 1) + 1, s)) for w, j, i, c in runs]


def apply_runs(e: torch.Tensor, runs: list[tuple[float, slice, slice]], size: int, dim: int,
                adjoint: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """A·e along `dim` (its windows) from `window_runs`, or Aᵀ·e with `adjoint`; `size`: the
    length of that dim in the result (`out`, overwritten, when given)."""
    shape = e.shape[:dim] + (size,) + e.shape[dim + 1:]
    out = e.new_zeros(shape) if out is None else out.view(shape).zero_()
    lead = (slice(None),) * dim
    for w, windows, units in runs:
        dst, src = (units, windows) if adjoint else (windows, units)
        out[lead + (dst,)].add_(e[lead + (src,)], alpha=w)
    return out


def aperture(config: SheetConfig) -> np.ndarray:
    """(r²,) float32 mask of each field's pixels: ones, or the disc of diameter r (pixel centres
    within r/2 of the field's centre) when `round_fields`."""
    r = config.receptive_field
    if not config.round_fields:
        return np.ones(r * r, dtype=np.float32)
    c = (r - 1) / 2.0
    yy, xx = np.mgrid[0:r, 0:r]
    return ((yy - c) ** 2 + (xx - c) ** 2 <= (r / 2.0) ** 2).astype(np.float32).ravel()


def unit_masks(config: SheetConfig, field: np.ndarray) -> np.ndarray:
    """(K, w²) float32: the field (r², `aperture`) of each of a position's K units placed in
    the w×w window at the unit's shift (`SheetConfig.offsets`)."""
    r, w = config.receptive_field, config.window
    field = field.reshape(r, r)
    rows_off, cols_off = config.offsets
    out = np.zeros((len(rows_off), len(cols_off), w, w), dtype=np.float32)
    for i, dy in enumerate(rows_off):
        for j, dx in enumerate(cols_off):
            out[i, j, dy:dy + r, dx:dx + r] = field
    return out.reshape(len(rows_off) * len(cols_off), w * w)


def window_matrices(config: SheetConfig) -> tuple[np.ndarray, np.ndarray]:
    """(A_r: (J_r, R), A_c: (J_c, C)): the 1-D pool windows along the unit map's rows and
    columns (`groups.window_matrix`), so that A_r[j] ⊗ A_c[l] is pool (j, l) of
    `SheetConfig.map_pools().pool_matrix()`."""
    k, s, wrap, sigma = config.pool_size, config.pool_stride, config.pool_wrap, config.pool_sigma
    rows, cols = config.unit_map
    return (window_matrix(rows, k, s, wrap, sigma).astype(np.float32),
            window_matrix(cols, k, s, wrap, sigma).astype(np.float32))


@torch.no_grad()
def sheet_gradients(model: Sheet, x: torch.Tensor
                ) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
    """The loss terms and the gradients of their sum w.r.t. the sheet's (M, D, b, gain),
    x: (B, H·W).

    Everything is kept batch-last, (L, K, B) per position and (H·W, B) for images: the
    fields' pixels are gathered once (`field_pixels`) and the decoder's fold is one
    `index_add_`, every product is one `bmm` on the weights as they are stored, and no
    step transposes a large array. With s = F's nonlinearity
    (shrink or relu) of u = Mx, z = g ⊙ s, r = x − Dz, n_j the pools' norms, B images,
    per position:
        ∂/∂z = (−D r + λ z ⊙ Σ_j w_j/n_j + μ sign z) / B,   ∂/∂D = −z rᵀ / B,
        ∂/∂u = ∂/∂z ⊙ g ⊙ [s ≠ 0],   ∂/∂M = ∂/∂u xᵀ,   ∂/∂g = Σ_B ∂/∂z ⊙ s,
        ∂/∂b = −sign(b) Σ_B ∂/∂z ⊙ g ⊙ sign(s)
    (r, x: the position's field; tested against a position-by-position reference)."""
    c = model.config
    (H, W), B, L = c.input_shape, x.shape[0], model.M.shape[0]
    pix, M, D = model.pixels.flatten(), model.M, model.D
    # Few, reused large arrays: on the CPU a fresh one costs its page faults, as much as a
    # pass of arithmetic over it.
    img = x.new_empty(H * W, B).copy_(x.T)  # made the residual in place below
    X = img.index_select(0, pix).view(L, -1, B)  # the fields' pixels, (L, r², B)
    s = torch.bmm(M, X)  # u = Mx, (L, K, B), made s in place
    t = model.per_position_column(model.b).abs()  # (L, K, 1)
    if c.encoder == "shrink":
        z = torch.clamp(s, -t, t)
        s.sub_(z)
    else:
        z = torch.empty_like(s)
        s.sub_(t).relu_()
    g = model.per_position_column(model.gain)
    z = torch.mul(s, g, out=z)
    if model.tracks_firing:
        model.note_firing((z != 0).any(-1))
    patches = torch.bmm(D.transpose(1, 2), z)  # Dz, field by field, (L, r², B)
    res = img.index_add_(0, pix, patches.view(-1, B), alpha=-1.0)  # x − Dz, (H·W, B)
    (rows, cols), (a, b) = c.sheet, c.block
    zmap = z.view(rows, cols, a, b, B).transpose(1, 2)  # the unit map (rows, a, cols, b, B)
    e = torch.mul(zmap, zmap, out=z.new_empty(zmap.shape)).view(*c.unit_map, B)  # z²
    n = model.pool_sum(e).add_(c.eps).sqrt_()  # (J_r, J_c, B)
    terms = {"reconstruction": 0.5 * torch.dot(res.view(-1), res.view(-1)) / B,
             "group_sparsity": c.lam * n.sum() / B}
    q = model.pool_sum_transpose(n.reciprocal_().mul_(c.lam), out=e)  # Σ_j λ w_j / n_j, (R, C, B)
    dz = torch.empty_like(z)  # B·∂/∂z, (L, K, B), built in place
    torch.mul(zmap, q.view(rows, a, cols, b, B),
              out=dz.view(rows, cols, a, b, B).transpose(1, 2))
    work = e.view(dz.shape)  # free again
    if c.l1 > 0:
        sign_z = torch.sgn(z, out=work)
        terms["l1"] = c.l1 * torch.dot(sign_z.view(-1), z.view(-1)) / B
        dz.add_(sign_z, alpha=c.l1)
    R = res.index_select(0, pix).view(L, -1, B)  # the residual's patches
    dz.baddbmm_(D, R, alpha=-1.0)
    dD = torch.bmm(z, R.transpose(1, 2)).div_(-B)
    dg = torch.mul(dz, s, out=work).sum(-1)
    ds = dz.mul_(g)
    sign_s = s.sgn_()
    db = torch.mul(ds, sign_s, out=work).sum(-1)
    du = ds.mul_(sign_s.abs_())
    dM = torch.bmm(du, X.transpose(1, 2)).div_(B)
    terms["loss"] = sum(terms.values())
    db = model.to_map(db.unsqueeze(0))[0].mul_(torch.sgn(model.b)).div_(-B)
    dg = model.to_map(dg.unsqueeze(0))[0].div_(B)
    return terms, (dM, dD, db, dg)
