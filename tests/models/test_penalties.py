"""Penalties and solvers: properties, and FISTA/ISTA against scikit-learn's lasso solver."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import sparse_encode

from sparse_models.models.penalties import (
    fista,
    group_l2,
    group_norms,
    ista,
    lasso_objective,
    soft_threshold,
)


def _problem(n=64, k=48, p=36, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(k, p, generator=g, dtype=torch.float64)
    D /= D.norm(dim=1, keepdim=True)
    x = torch.randn(n, p, generator=g, dtype=torch.float64)
    return x, D


def test_soft_threshold_is_prox_of_l1():
    v = torch.linspace(-3, 3, 13)
    out = soft_threshold(v, 1.0)
    assert torch.allclose(out, torch.sign(v) * torch.clamp(v.abs() - 1, min=0))
    assert (soft_threshold(v, 1.0, positive=True) >= 0).all()
    # Brute-force prox: argmin_u ½(u−v)² + |u| over a fine grid.
    grid = torch.linspace(-4, 4, 8001)
    for vi, oi in zip(v, out, strict=True):
        brute = grid[torch.argmin(0.5 * (grid - vi) ** 2 + grid.abs())]
        assert abs(float(brute - oi)) < 2e-3


def test_group_l2_matches_loop():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 9, generator=g)
    P = (torch.rand(4, 9, generator=g) > 0.5).float() * torch.rand(4, 9, generator=g)
    expect = torch.stack([sum(torch.sqrt(sum(P[j, i] * z[b, i] ** 2 for i in range(9)) + 1e-8)
                              for j in range(4)) for b in range(5)])
    assert torch.allclose(group_l2(z, P, 1e-8), expect, atol=1e-5)
    assert torch.allclose(group_norms(z, P) ** 2, (z**2) @ P.T, atol=1e-5)


def test_group_l2_with_singleton_groups_is_l1():
    z = torch.randn(3, 10)
    assert torch.allclose(group_l2(z, torch.eye(10), eps=0.0), z.abs().sum(-1), atol=1e-6)


@pytest.mark.parametrize("lam", [0.05, 0.2, 0.5])
def test_fista_matches_sklearn_lasso(lam):
    x, D = _problem()
    z_sk = sparse_encode(x.numpy(), D.numpy(), algorithm="lasso_cd", alpha=lam, max_iter=10000)
    f_sk = float(lasso_objective(x, D, torch.from_numpy(z_sk), lam))
    z = fista(x, D, lam, n_iter=2000)
    f = float(lasso_objective(x, D, z, lam))
    assert f <= f_sk * (1 + 1e-6)
    assert np.allclose(z.numpy(), z_sk, atol=2e-3)


def test_ista_converges_to_the_same_minimum_more_slowly():
    x, D = _problem(seed=3)
    lam = 0.2
    f_star = float(lasso_objective(x, D, fista(x, D, lam, 3000), lam))
    f_ista_50 = float(lasso_objective(x, D, ista(x, D, lam, 50), lam))
    f_fista_50 = float(lasso_objective(x, D, fista(x, D, lam, 50), lam))
    f_ista_long = float(lasso_objective(x, D, ista(x, D, lam, 5000), lam))
    assert f_fista_50 < f_ista_50
    assert abs(f_ista_long - f_star) / f_star < 1e-5


def test_positive_codes_are_non_negative_and_optimal_among_them():
    x, D = _problem(seed=4)
    z = fista(x, D, 0.1, 1500, positive=True)
    assert (z >= 0).all()
    z_sk = sparse_encode(x.numpy(), D.numpy(), algorithm="lasso_cd", alpha=0.1,
                         positive=True, max_iter=10000)
    f, f_sk = (float(lasso_objective(x, D, torch.as_tensor(v), 0.1)) for v in (z, z_sk))
    assert f <= f_sk * (1 + 1e-5)


def test_learnable_shrink_matches_autograd_of_the_formula():
    from sparse_models.models.penalties import shrink

    g = torch.Generator().manual_seed(2)
    u = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.rand(5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(shrink, (u, t))
    ref = torch.sign(u) * torch.relu(u.abs() - t)
    assert torch.allclose(shrink(u, t), ref)
