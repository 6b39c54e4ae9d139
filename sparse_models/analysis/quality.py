"""Scalar quality measures of a trained model and its feature map.

- live fraction: share of units that are active on at least one sample;
- mean orientation selectivity (see `orientation.preferred_orientation`);
- map smoothness: mean absolute orientation difference between 4-neighbours on the map, circular
  mod π, in degrees (45° for independent uniform orientations, → 0 for a smooth map);
- explained variance of a reconstruction, 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² (x̄: the mean input);
- within- vs between-pool similarity of filters: does group sparsity actually group similar
  features? (Kavukcuoglu et al., CVPR 2009; Hyvärinen & Hoyer 2001.)

Undefined values are NaN here; `report` turns them into None.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .orientation import as_numpy
from .sparsity import dead_units

_BLOCK = 1024  # filter rows per block in the pairwise similarity


def live_fraction(codes: np.ndarray | torch.Tensor, threshold: float | None = None) -> float:
    """Fraction of the K units active on at least one of the B samples. codes: (B, K)."""
    return float(1.0 - dead_units(codes, 0.0, threshold).mean())


def mean_selectivity(selectivity: np.ndarray | torch.Tensor) -> float:
    """Mean of orientation selectivities (N,) (or any shape); NaN when empty."""
    s = as_numpy(selectivity)
    return float(s.mean()) if s.size else math.nan


def orientation_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference between orientations mod π, in radians, in [0, π/2]."""
    d = np.mod(np.asarray(a) - np.asarray(b), np.pi)
    return np.minimum(d, np.pi - d)


def neighbour_orientation_diff_deg(theta_map: np.ndarray, periodic: bool = False) -> float:
    """Mean |Δθ| (mod π, degrees) over horizontal and vertical neighbour pairs of a (rows, cols)
    map; pairs across the edges are included when periodic. NaN for a 1×1 map."""
    t = as_numpy(theta_map)
    if t.ndim != 2:
        raise ValueError(f"theta_map must be 2-D, got shape {t.shape}")
    if periodic:
        diffs = [orientation_difference(t, np.roll(t, -1, axis=0)),
                 orientation_difference(t, np.roll(t, -1, axis=1))]
    else:
        diffs = [orientation_difference(t[1:], t[:-1]),
                 orientation_difference(t[:, 1:], t[:, :-1])]
    d = np.concatenate([x.ravel() for x in diffs])
    return float(np.degrees(d.mean())) if d.size else math.nan


def explained_variance(x: np.ndarray | torch.Tensor, x_hat: np.ndarray | torch.Tensor) -> float:
    """1 − Σ‖x − x̂‖² / Σ‖x − x̄‖², x and x_hat (B, D), x̄ the mean over samples (D,).

    1 for a perfect reconstruction, 0 for predicting the mean input, negative when worse.
    NaN when x has no variance.
    """
    a, b = as_numpy(x), as_numpy(x_hat)
    if a.shape != b.shape:
        raise ValueError(f"x {a.shape} and x_hat {b.shape} differ in shape")
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    total = float(((a - a.mean(axis=0)) ** 2).sum())
    if total <= 0:
        return math.nan
    return 1.0 - float(((a - b) ** 2).sum()) / total


def within_vs_between_pool_similarity(
    filters: np.ndarray | torch.Tensor, pool_matrix: np.ndarray | torch.Tensor
) -> dict[str, float | int]:
    """Mean |cosine similarity| of filter pairs that share a pool vs pairs that share none.

    filters: (N, ...) flattened per filter; pool_matrix: (n_pools, N), a pair (i, j), i ≠ j,
    shares a pool when some row has P[·, i] > 0 and P[·, j] > 0. Returns
    `{within, between, ratio (within / between), n_within_pairs, n_between_pairs}`;
    a mean over no pairs is NaN.
    """
    f = as_numpy(filters)
    f = f.reshape(f.shape[0], -1)
    P = as_numpy(pool_matrix)
    n = f.shape[0]
    if P.ndim != 2 or P.shape[1] != n:
        raise ValueError(f"pool matrix {tuple(P.shape)} does not match {n} filters")
    norms = np.linalg.norm(f, axis=1)
    unit = f / np.where(norms > 0, norms, 1.0)[:, None]
    member = (P > 0).astype(np.float64)
    sums = {True: 0.0, False: 0.0}
    counts = {True: 0, False: 0}
    for s in range(0, n, _BLOCK):  # row blocks bound the memory of the (N, N) comparisons
        e = min(n, s + _BLOCK)
        cos = np.abs(unit[s:e] @ unit.T)  # (b, N)
        shared = (member[:, s:e].T @ member) > 0  # (b, N)
        upper = np.arange(n)[None, :] > np.arange(s, e)[:, None]  # each pair once, i < j
        for flag in (True, False):
            sel = upper & (shared == flag)
            sums[flag] += float(cos[sel].sum())
            counts[flag] += int(sel.sum())
    w = sums[True] / counts[True] if counts[True] else math.nan
    b = sums[False] / counts[False] if counts[False] else math.nan
    return {
        "within": w,
        "between": b,
        "ratio": w / b if math.isfinite(w) and math.isfinite(b) and b > 0 else math.nan,
        "n_within_pairs": counts[True],
        "n_between_pairs": counts[False],
    }
