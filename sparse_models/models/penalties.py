"""Sparsity penalties, their proximal operators, and the batched ISTA / FISTA solvers.

Every function here is standalone and stateless so it can be tested against a reference
(e.g. FISTA against scikit-learn's `sparse_encode`, which minimises the same lasso objective).

Lasso objective, per sample (rows of X):  E(z) = ½‖x − zD‖² + λ‖z‖₁,  D: (K, P) atoms as rows.
(With `positive=True`, z ≥ 0 is enforced: non-negative ISTA.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..config import check


def l1(z: torch.Tensor) -> torch.Tensor:
    """Σ|z| per sample. z: (B, K) -> (B,)"""
    return z.abs().sum(-1)


def group_l2(z: torch.Tensor, pools: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Group-sparsity penalty Σ_j sqrt(Σ_i P[j,i] z_i² + eps) per sample.

    z: (B, K), pools: (J, K) non-negative weights -> (B,). `eps` keeps the gradient finite at 0.
    """
    return torch.sqrt((z * z) @ pools.T + eps).sum(-1)


def group_norms(z: torch.Tensor, pools: torch.Tensor) -> torch.Tensor:
    """The pooled outputs sqrt(Σ_i P[j,i] z_i²). z: (B, K) -> (B, J)"""
    return torch.sqrt((z * z) @ pools.T)


def soft_threshold(v: torch.Tensor, thresh: torch.Tensor | float, positive: bool = False) -> torch.Tensor:
    """Proximal operator of thresh·‖·‖₁ (thresh may be per-unit), or of it plus z ≥ 0."""
    if positive:
        return torch.relu(v - thresh)
    return v - torch.clamp(v, -thresh, thresh)  # = sign(v)·max(|v| − thresh, 0), in two passes


class _SoftShrink(torch.autograd.Function):
    """shrink(u, t) = sign(u)·max(|u| − t, 0) with a per-unit threshold t: (K,) and a backward
    pass of a few cheap elementwise ops (autograd through clamp/where costs several times more)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = soft_threshold(u, t)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (out,) = ctx.saved_tensors
        s = torch.sign(out)  # 0 where shrunk; float arithmetic beats boolean masks here
        gs = grad * s
        return gs * s, -gs.sum(0)


def shrink(u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Soft-shrinkage with a learnable per-unit threshold. u: (B, K), t: (K,) >= 0 -> (B, K)"""
    return _SoftShrink.apply(u, t)


def lasso_objective(x: torch.Tensor, D: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    """½‖x − zD‖² + λ‖z‖₁ summed over the batch. x: (B, P), D: (K, P), z: (B, K) -> scalar"""
    r = x - z @ D
    return 0.5 * (r * r).sum() + lam * z.abs().sum()


def lipschitz(D: torch.Tensor) -> float:
    """Largest eigenvalue of D Dᵀ (the gradient's Lipschitz constant). D: (K, P)"""
    return float(torch.linalg.matrix_norm(D.double(), ord=2) ** 2)


@torch.no_grad()
def ista(
    x: torch.Tensor,
    D: torch.Tensor,
    lam: float,
    n_iter: int = 100,
    positive: bool = False,
    z0: torch.Tensor | None = None,
    L: float | None = None,
) -> torch.Tensor:
    """Batched ISTA for the lasso. x: (B, P), D: (K, P) -> z: (B, K)

    z ← shrink(z − (zD − x)Dᵀ / L, λ/L). Uses the Gram matrix so each iteration costs one
    (B, K) × (K, K) product.
    """
    L = L or lipschitz(D)
    G = D @ D.T  # (K, K)
    b = x @ D.T  # (B, K)
    z = torch.zeros(x.shape[0], D.shape[0], dtype=x.dtype, device=x.device) if z0 is None else z0.clone()
    for _ in range(n_iter):
        z = soft_threshold(z - (z @ G - b) / L, lam / L, positive)
    return z


class FistaInfo(NamedTuple):
    """Per-sample record of a `fista_solve` call: iterations run and final duality gap."""

    iterations: torch.Tensor  # (B,) long
    gap: torch.Tensor  # (B,) duality gap of the returned code (an upper bound on its sub-optimality)
    converged: torch.Tensor  # (B,) bool: gap ≤ tol·‖x‖² (all False without a tol: nothing was tested)


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vecdot(a, b).unsqueeze(-1)


def _duality_gap(z, gz, b, xx, lam: float, positive: bool) -> torch.Tensor:
    """Lasso duality gap per row, from z, its gradient gz = zG − b, b = xDᵀ and xx = ‖x‖².

    The dual point is the residual r = x − zD scaled into the feasible set (Dr = −gz), as in
    scikit-learn's coordinate descent. All terms come from dot products of (B, K) rows, so the
    check costs no extra matrix product.
    """
    zb = _rowdot(z, b)
    rr = (xx - zb + _rowdot(z, gz)).clamp_min(0)  # ‖x − zD‖²
    xr = xx - zb  # x·r
    c = (-gz).amax(-1, keepdim=True) if positive else gz.abs().amax(-1, keepdim=True)
    s = torch.clamp(lam / c.clamp_min(1e-30), max=1.0)
    primal = 0.5 * rr + lam * z.abs().sum(-1, keepdim=True)
    return (primal - (s * xr - 0.5 * s * s * rr)).squeeze(-1)


@torch.no_grad()
def fista_solve(
    x: torch.Tensor,
    D: torch.Tensor,
    lam: float,
    n_iter: int = 100,
    positive: bool = False,
    z0: torch.Tensor | None = None,
    L: float | None = None,
    restart: bool = True,
    tol: float | None = None,
    backtrack: bool = True,
    check_every: int = 5,
    block: int | None = None,
    final_gap: bool = True,
) -> tuple[torch.Tensor, FistaInfo]:
    """Batched FISTA (Beck & Teboulle 2009) for the lasso. x: (B, P), D: (K, P) -> (B, K), info

    Each sample (row) runs its own FISTA in one batch:
    - `backtrack`: a step size 1/L_i per row, found by backtracking (and tried a little larger at
      every iteration), instead of the global 1/L. Codes are sparse, so the curvature along a
      row's steps is several times below ‖D‖², and rows take several times fewer iterations.
    - `restart`: FISTA's momentum is reset per row when it points uphill (the gradient restart
      of O'Donoghue & Candès 2015).
    - The gradient zG − b (G = DDᵀ, b = xDᵀ) is carried along with z and y, so an iteration
      costs one (B, K) × (K, K) product, and the backtracking test and the duality gap come free.
    - `tol`: a row stops once its duality gap is ≤ tol·‖x‖² (scikit-learn's lasso criterion),
      tested every `check_every` iterations; stopped rows leave the batch and waiting rows join
      it, `block` rows at a time (on the CPU, blocks of ~1024 rows keep the working set in
      cache). Without `tol`, every row runs exactly `n_iter` iterations.
    `L` is the Lipschitz bound ‖D‖² (computed when not given); steps never go below 1/L.
    Without `tol`, the returned gaps cost one more product (skip it with `final_gap=False`; the
    gaps are then NaN).
    """
    B, K = x.shape[0], D.shape[0]
    check(n_iter >= 0, f"n_iter must be >= 0, got {n_iter}")
    check(tol is None or tol > 0, f"tol must be positive, got {tol}")
    check(check_every >= 1, f"check_every must be >= 1, got {check_every}")
    L_max = float(L or lipschitz(D))
    if block is None:
        block = B if x.device.type != "cpu" else 1024
    block = max(1, min(block, B)) if B else 1
    G = D @ D.T  # (K, K)
    b_all = x @ D.T  # (B, K)
    xx_all = _rowdot(x, x)
    z_all = torch.zeros(B, K, dtype=x.dtype, device=x.device) if z0 is None else z0.clone()
    out = torch.zeros_like(z_all)
    iters_out = torch.zeros(B, dtype=torch.long, device=x.device)
    gap_out = torch.zeros(B, dtype=x.dtype, device=x.device)
    conv_out = torch.zeros(B, dtype=torch.bool, device=x.device)
    L_start, down = (0.3 * L_max, 0.8) if backtrack else (L_max, 1.0)

    # The pool of rows being solved: each state tensor has one row per sample in `idx`.
    idx = torch.zeros(0, dtype=torch.long, device=x.device)
    empty = x.new_zeros(0, K)
    z, y, gz, gy, b = empty, empty, empty, empty, empty
    col = x.new_zeros(0, 1)
    xx, Lr, k, age = col, col, col, col
    nxt = 0

    def refill_due() -> bool:
        return idx.numel() < max(block // 2, 1) and nxt < B

    while True:
        if refill_due():  # top the pool up
            new = torch.arange(nxt, min(B, nxt + block - idx.numel()), device=x.device)
            nxt += new.numel()
            zn, bn = z_all[new], b_all[new]
            gn = bn.neg() if z0 is None else torch.addmm(bn, zn, G, beta=-1.0)
            ones = x.new_ones(new.numel(), 1)
            idx = torch.cat([idx, new])
            z, y, gz, gy, b = (torch.cat([a, n]) for a, n in ((z, zn), (y, zn), (gz, gn), (gy, gn), (b, bn)))
            xx = torch.cat([xx, xx_all[new]])
            Lr = torch.cat([Lr, ones * L_start])
            k = torch.cat([k, ones])
            age = torch.cat([age, ones * 0])
        if idx.numel() == 0:
            break
        # Retire rows that converged or used up their iterations.
        done = age.squeeze(-1) >= n_iter
        if tol is not None:
            gap = _duality_gap(z, gz, b, xx, lam, positive)
            done |= gap <= tol * xx.squeeze(-1)
        if bool(done.any()):
            rows = idx[done]
            out[rows] = z[done]
            iters_out[rows] = age[done].squeeze(-1).long()
            if tol is not None:
                gap_out[rows] = gap[done]
            keep = ~done
            idx, z, y, gz, gy, b, xx, Lr, k, age = (
                a[keep] for a in (idx, z, y, gz, gy, b, xx, Lr, k, age))
            if idx.numel() == 0 or refill_due():
                continue  # refill, and check the rows that join, before iterating
            # (the rows left were just checked: no need to compute their gaps again)
        rounds = int(n_iter - age.max())  # no row runs past n_iter
        if tol is not None:
            rounds = min(rounds, check_every)
        for _ in range(rounds):
            z_new = soft_threshold(torch.addcdiv(y, gy, Lr, value=-1.0), lam / Lr, positive)
            gz_new = torch.addmm(b, z_new, G, beta=-1.0)
            d = z_new - y
            if backtrack:
                # f(z_new) ≤ f(y) + ⟨∇f(y), d⟩ + L/2‖d‖² ⟺ dᵀGd ≤ L‖d‖² for this quadratic f.
                dgd, dd = _rowdot(gz_new - gy, d), _rowdot(d, d)
                bad = (dgd > Lr * dd * (1 + 1e-4)).squeeze(-1).nonzero().squeeze(-1)
                while bad.numel():
                    Lb = torch.maximum(2 * Lr[bad], 1.1 * dgd[bad] / dd[bad]).clamp(max=L_max)
                    Lr[bad] = Lb
                    yb, gyb = y[bad], gy[bad]
                    zb = soft_threshold(torch.addcdiv(yb, gyb, Lb, value=-1.0), lam / Lb, positive)
                    gzb = torch.addmm(b[bad], zb, G, beta=-1.0)
                    db = zb - yb
                    dgdb, ddb = _rowdot(gzb - gyb, db), _rowdot(db, db)
                    z_new[bad], gz_new[bad], d[bad] = zb, gzb, db
                    dgd[bad], dd[bad] = dgdb, ddb
                    bad = bad[((dgdb > Lb * ddb * (1 + 1e-4)) & (Lb < L_max)).squeeze(-1)]
                # Next try: a little below this step's L, but not below the curvature just seen.
                Lr = torch.maximum(Lr * down, dgd / dd.clamp_min(1e-30)).clamp_(min=1e-3 * L_max)
            step = z_new - z
            t_new = (1 + torch.sqrt(1 + 4 * k * k)) / 2  # k holds FISTA's t, per row
            mom = (k - 1) / t_new
            if restart:
                uphill = _rowdot(d, step) < 0  # (y − z_new)·(z_new − z) > 0
                t_new = torch.where(uphill, 1.0, t_new)
                mom = torch.where(uphill, 0.0, mom)
            k = t_new
            y = torch.addcmul(z_new, mom, step)
            gy = torch.addcmul(gz_new, mom, gz_new - gz)
            z, gz = z_new, gz_new
        age = age + rounds
    if tol is None and not final_gap:
        gap_out.fill_(float("nan"))
    elif tol is None:
        gap_out = _duality_gap(out, torch.addmm(b_all, out, G, beta=-1.0), b_all, xx_all, lam, positive)
    else:
        conv_out = gap_out <= tol * xx_all.squeeze(-1)
    return out, FistaInfo(iters_out, gap_out, conv_out)


@torch.no_grad()
def _fista_global_step(x, D, lam, n_iter, positive, z0, L, restart) -> torch.Tensor:
    """Plain FISTA with the global step 1/L for a fixed number of iterations: the leanest loop
    (one fused `addmm` on the Gram matrix, y − (yG − b)/L), for small training batches."""
    G = D @ D.T  # (K, K)
    b_over_L = (x @ D.T) / L  # (B, K)
    thresh = lam / L
    z = torch.zeros(x.shape[0], D.shape[0], dtype=x.dtype, device=x.device) if z0 is None else z0.clone()
    y = z.clone()
    t = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    for _ in range(n_iter):
        z_new = soft_threshold(torch.addmm(y + b_over_L, y, G, alpha=-1.0 / L), thresh, positive)
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        step = z_new - z
        mom = (t - 1) / t_new
        if restart:
            uphill = ((y - z_new) * step).sum(-1, keepdim=True) > 0
            t_new = torch.where(uphill, 1.0, t_new)
            mom = torch.where(uphill, 0.0, mom)
        y = torch.addcmul(z_new, mom, step)
        z, t = z_new, t_new
    return z


def fista(
    x: torch.Tensor,
    D: torch.Tensor,
    lam: float,
    n_iter: int = 100,
    positive: bool = False,
    z0: torch.Tensor | None = None,
    L: float | None = None,
    restart: bool = True,
    tol: float | None = None,
    backtrack: bool = True,
) -> torch.Tensor:
    """Batched FISTA for the lasso; the codes of `fista_solve`. x: (B, P), D: (K, P) -> (B, K)

    With `backtrack=False` and no `tol` this is textbook FISTA (global step 1/‖D‖², `n_iter`
    iterations for every row) on its leanest loop.
    """
    if not backtrack and tol is None:
        check(n_iter >= 0, f"n_iter must be >= 0, got {n_iter}")
        return _fista_global_step(x, D, lam, n_iter, positive, z0, float(L or lipschitz(D)), restart)
    return fista_solve(x, D, lam, n_iter, positive, z0, L, restart, tol, backtrack,
                       final_gap=False)[0]
