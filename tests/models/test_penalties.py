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


def _per_sample_objective(x, D, z, lam):
    r = x - z @ D
    return 0.5 * (r * r).sum(-1) + lam * z.abs().sum(-1)


def _correlated_problem(n=300, k=96, p=36, seed=5):
    """Atoms that share a common component, so the global Lipschitz constant ‖D‖² is large."""
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(k, p, generator=g, dtype=torch.float64) + 1.5 * torch.randn(1, p, generator=g, dtype=torch.float64)
    D /= D.norm(dim=1, keepdim=True)
    x = torch.randn(n, p, generator=g, dtype=torch.float64)
    return x, D


@pytest.mark.parametrize("positive", [False, True])
def test_fista_tol_stops_each_sample_at_a_certified_gap(positive):
    from sparse_models.models.penalties import fista_solve

    x, D = _correlated_problem(n=120)
    lam, tol = 0.3, 1e-5
    z, info = fista_solve(x, D, lam, n_iter=5000, tol=tol, positive=positive, block=64)
    xx = (x * x).sum(-1)
    assert info.converged.all()
    assert (info.gap <= tol * xx).all()
    assert (info.iterations < 5000).all()
    # The gap bounds the true sub-optimality of every sample (reference: a long solve).
    z_star, ref = fista_solve(x, D, lam, n_iter=20000, tol=1e-13, positive=positive)
    assert ref.converged.all()
    excess = _per_sample_objective(x, D, z, lam) - _per_sample_objective(x, D, z_star, lam)
    assert (excess <= info.gap + 1e-9).all()
    assert (excess >= -1e-9).all()
    if positive:
        assert (z >= 0).all()


def test_fista_samples_whose_solution_is_zero_stop_at_once():
    from sparse_models.models.penalties import fista_solve

    x, D = _correlated_problem(n=40)
    x[:10] *= 1e-3  # ‖Dx‖∞ ≤ λ: z = 0 is optimal
    z, info = fista_solve(x, D, 0.5, n_iter=500, tol=1e-6)
    assert (z[:10] == 0).all() and (info.iterations[:10] == 0).all()
    assert (info.iterations[10:] > 0).all()


def test_fista_iteration_cap_and_warm_start():
    from sparse_models.models.penalties import fista_solve

    x, D = _correlated_problem(n=50)
    z, info = fista_solve(x, D, 0.3, n_iter=7, tol=1e-12, check_every=3)
    assert (info.iterations == 7).all() and not info.converged.any()
    z_ref, _ = fista_solve(x, D, 0.3, n_iter=5000, tol=1e-10)
    _, warm = fista_solve(x, D, 0.3, n_iter=5000, tol=1e-8, z0=z_ref)
    assert (warm.iterations == 0).all()  # the warm start is already within tolerance


def test_fista_result_does_not_depend_on_the_block_size():
    from sparse_models.models.penalties import fista_solve

    x, D = _correlated_problem(n=100)
    z1, _ = fista_solve(x, D, 0.3, n_iter=60, block=100)
    z2, _ = fista_solve(x, D, 0.3, n_iter=60, block=7)
    assert torch.allclose(z1, z2, atol=1e-9)
    # With a tolerance rows come and go at different times; matmul rounding then differs a little
    # between block shapes, so the paths differ slightly but reach the same certified solution.
    z3, i3 = fista_solve(x, D, 0.3, n_iter=5000, tol=1e-7, block=100)
    z4, i4 = fista_solve(x, D, 0.3, n_iter=5000, tol=1e-7, block=9)
    assert i3.converged.all() and i4.converged.all()
    assert torch.allclose(z3, z4, atol=1e-3)


def test_backtracking_needs_fewer_iterations_than_the_global_step():
    from sparse_models.models.penalties import fista_solve

    x, D = _correlated_problem()
    _, bt = fista_solve(x, D, 0.3, n_iter=20000, tol=1e-6)
    _, plain = fista_solve(x, D, 0.3, n_iter=20000, tol=1e-6, backtrack=False)
    assert bt.converged.all() and plain.converged.all()
    assert bt.iterations.float().mean() < 0.7 * plain.iterations.float().mean()


@pytest.mark.parametrize("kwargs, match", [
    ({"tol": 0.0}, "tol must be positive"),
    ({"n_iter": -1}, "n_iter must be >= 0"),
    ({"check_every": 0}, "check_every must be >= 1"),
])
def test_fista_rejects_bad_settings(kwargs, match):
    from sparse_models.config import ConfigError
    from sparse_models.models.penalties import fista_solve

    x, D = _problem(n=4)
    with pytest.raises(ConfigError, match=match):
        fista_solve(x, D, 0.1, **kwargs)


def test_the_lean_global_step_loop_is_the_same_algorithm():
    from sparse_models.models.penalties import fista_solve

    x, D = _correlated_problem(n=60)
    lean = fista(x, D, 0.3, n_iter=80, backtrack=False)
    general, _ = fista_solve(x, D, 0.3, n_iter=80, backtrack=False, block=16)
    assert torch.allclose(lean, general, atol=1e-9)
