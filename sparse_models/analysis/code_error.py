"""Code error against iterations: how close ISTA, FISTA (plain, or with a tuned threshold) and
a trained LISTA encoder (Gregor & LeCun, ICML 2010) come to a lasso's optimal codes on one
dictionary and batch, and how many ISTA/FISTA iterations match a LISTA encoder's error (the DrSAE
page's LISTA view and `bench drsae`).

The error is relative, Σ‖zᵗ − z*‖² / Σ‖z*‖² over the batch, z* being the optimal codes of
½‖x − zD‖² + λ‖z‖₁ (non-negative with `positive`) found by FISTA to a small duality gap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..models.penalties import fista_solve, lipschitz, soft_threshold

if TYPE_CHECKING:
    from ..models.lista import Lista


@torch.no_grad()
def ista_fista_paths(x: torch.Tensor, D: torch.Tensor, lam: float, n_iter: int,
                     positive: bool = False, threshold: float | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The codes of ISTA and of FISTA (global step 1/L, no restart: the textbook methods) after
    each iteration 1..n_iter, from z = 0. x: (B, P), D: (K, P) -> two (n_iter, B, K)

    `threshold` replaces the shrinkage λ/L of both (a tuned threshold; default λ/L)."""
    L = lipschitz(D)
    t_shrink = lam / L if threshold is None else threshold
    G = D @ D.T
    b = x @ D.T
    z_i = x.new_zeros(x.shape[0], D.shape[0])
    z_f, y, t = z_i.clone(), z_i.clone(), 1.0
    ista_out, fista_out = [], []
    for _ in range(n_iter):
        z_i = soft_threshold(z_i - (z_i @ G - b) / L, t_shrink, positive)
        z_new = soft_threshold(y - (y @ G - b) / L, t_shrink, positive)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = z_new + ((t - 1) / t_new) * (z_new - z_f)
        z_f, t = z_new, t_new
        ista_out.append(z_i)
        fista_out.append(z_f)
    return torch.stack(ista_out), torch.stack(fista_out)


def relative_error(z: torch.Tensor, z_star: torch.Tensor) -> np.ndarray:
    """Σ‖z − z*‖² / Σ‖z*‖² over the batch, per leading index. z: (..., B, K) -> (...,)"""
    num = ((z - z_star) ** 2).sum((-1, -2))
    return (num / (z_star ** 2).sum().clamp_min(1e-30)).cpu().numpy().astype(np.float64)


@torch.no_grad()
def code_error_curves(x: torch.Tensor, D: torch.Tensor, lam: float, positive: bool = False,
                      n_iter: int = 100, lista: Lista | None = None,
                      threshold: float | None = None, target_iter: int = 5000,
                      target_tol: float = 1e-8) -> dict[str, np.ndarray]:
    """Relative code error Σ‖zᵗ − z*‖² / Σ‖z*‖² after each iteration t = 1..n_iter of ISTA and
    FISTA (and t = 1..T of `lista`, when given) on one batch x: (B, P) and dictionary D: (K, P),
    z* = the lasso's optimal codes (FISTA to a duality gap of `target_tol`·‖x‖²).

    Returns {"ista": (n_iter,), "fista": (n_iter,), "lista": (T,) when given, "iterations":
    1..n_iter}; `threshold` runs ISTA/FISTA with that shrinkage in place of λ/L (tuned)."""
    x, D = x.float(), D.float()
    z_star = fista_solve(x, D, lam, target_iter, positive, tol=target_tol, final_gap=False)[0]
    zi, zf = ista_fista_paths(x, D, lam, n_iter, positive, threshold)
    out = {"iterations": np.arange(1, n_iter + 1), "ista": relative_error(zi, z_star),
           "fista": relative_error(zf, z_star)}
    if lista is not None:
        out["lista"] = relative_error(lista.iterates(x), z_star)
    return out


def iterations_to_match(errors: np.ndarray, target: float) -> int | None:
    """The first iteration (1-based) whose error is ≤ target, None if none is."""
    hit = np.flatnonzero(np.asarray(errors) <= target)
    return int(hit[0]) + 1 if hit.size else None


@torch.no_grad()
def tuned_threshold_errors(x: torch.Tensor, D: torch.Tensor, lam: float, positive: bool = False,
                           n_iter: int = 30, scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0),
                           target_iter: int = 5000, target_tol: float = 1e-8
                           ) -> dict[str, np.ndarray]:
    """ISTA and FISTA with their shrinkage tuned per iteration count: for each t = 1..n_iter the
    lowest relative code error (to the optimal codes at λ) over thresholds `scales`·λ/L, and the
    scale that gave it — the fair baseline for an unrolled encoder (an untuned threshold λ/L is
    far from best after few iterations). Tune on one batch, report on another, to be fair.
    Returns {"ista", "fista": (n_iter,) errors, "ista_scale", "fista_scale": (n_iter,)}."""
    x, D = x.float(), D.float()
    z_star = fista_solve(x, D, lam, target_iter, positive, tol=target_tol, final_gap=False)[0]
    L = lipschitz(D)
    errs = {"ista": [], "fista": []}
    for s in scales:
        zi, zf = ista_fista_paths(x, D, lam, n_iter, positive, threshold=s * lam / L)
        errs["ista"].append(relative_error(zi, z_star))
        errs["fista"].append(relative_error(zf, z_star))
    out: dict[str, np.ndarray] = {}
    for k, e in errs.items():
        e = np.stack(e)  # (len(scales), n_iter)
        best = e.argmin(0)
        out[k] = e[best, np.arange(n_iter)]
        out[f"{k}_scale"] = np.asarray(scales)[best]
    return out
