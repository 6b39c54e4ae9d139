"""Sparsity penalties, their proximal operators, and the batched ISTA / FISTA solvers.

Every function here is standalone and stateless so it can be tested against a reference
(e.g. FISTA against scikit-learn's `sparse_encode`, which minimises the same lasso objective).

Lasso objective, per sample (rows of X):  E(z) = ½‖x − zD‖² + λ‖z‖₁,  D: (K, P) atoms as rows.
(With `positive=True`, z ≥ 0 is enforced: non-negative ISTA.)
"""

from __future__ import annotations

import torch


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
    return torch.sign(v) * torch.relu(v.abs() - thresh)


class _SoftShrink(torch.autograd.Function):
    """shrink(u, t) = sign(u)·max(|u| − t, 0) with a per-unit threshold t: (K,) and a backward
    pass of a few cheap elementwise ops (autograd through clamp/where costs several times more)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = u - torch.clamp(u, -t, t)
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


@torch.no_grad()
def fista(
    x: torch.Tensor,
    D: torch.Tensor,
    lam: float,
    n_iter: int = 100,
    positive: bool = False,
    z0: torch.Tensor | None = None,
    L: float | None = None,
    restart: bool = True,
) -> torch.Tensor:
    """Batched FISTA (Beck & Teboulle 2009) for the lasso. x: (B, P), D: (K, P) -> (B, K)

    With `restart`, momentum is reset per sample when it points uphill (the gradient restart
    of O'Donoghue & Candès 2015), which keeps FISTA's speed without its oscillations.
    The gradient step is one fused `addmm` on the Gram matrix: y − (yG − b)/L.
    """
    L = L or lipschitz(D)
    G = D @ D.T  # (K, K)
    b_over_L = (x @ D.T) / L  # (B, K)
    thresh = lam / L
    z = torch.zeros(x.shape[0], D.shape[0], dtype=x.dtype, device=x.device) if z0 is None else z0.clone()
    y = z.clone()
    t = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    for _ in range(n_iter):
        v = torch.addmm(y + b_over_L, y, G, alpha=-1.0 / L)
        z_new = soft_threshold(v, thresh, positive)
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        step = z_new - z
        mom = (t - 1) / t_new
        if restart:
            # Restart where the update disagrees with the generalized gradient (y - z_new).
            uphill = ((y - z_new) * step).sum(-1, keepdim=True) > 0
            t_new = torch.where(uphill, 1.0, t_new)
            mom = torch.where(uphill, 0.0, mom)
        y = torch.addcmul(z_new, mom, step)
        z, t = z_new, t_new
    return z
