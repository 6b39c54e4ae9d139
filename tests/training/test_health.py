"""Known answers for the health verdict: hand-built models whose codes we choose."""

from __future__ import annotations

import numpy as np
import torch

from sparse_models.models.base import Layout, SparseModel
from sparse_models.training.health import assess


class Fixed(SparseModel):
    """z = relu(x Wᵀ) with a chosen W, decoded by W (exact for W = [I; −I])."""

    name = "health_fixed"

    def __init__(self, W: torch.Tensor) -> None:
        super().__init__(config=None)
        self.W = torch.nn.Parameter(W.clone())

    @property
    def n_units(self) -> int:
        return self.W.shape[0]

    @property
    def layout(self) -> Layout:
        return Layout("none")

    def encode(self, x):
        return torch.relu(x @ self.W.T)

    def decode(self, z):
        return z @ self.W

    def filters(self, kind="decoder"):
        return self.W.detach().reshape(self.n_units, 1, 2, 2)

    def filter_kinds(self):
        return ("decoder",)


X = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
BOTH_SIGNS = torch.cat([torch.eye(4), -torch.eye(4)])  # every direction, both signs: all fire


def test_a_model_that_learned_is_healthy() -> None:
    h = assess(Fixed(BOTH_SIGNS), X)
    assert h.verdict == "healthy", h.reasons
    assert h.numbers["dead_fraction"] == 0 and h.numbers["explained_variance"] > 0.99


def test_all_zero_codes_are_a_collapse() -> None:
    h = assess(Fixed(torch.zeros(8, 4)), X)
    assert h.verdict == "collapsed" and "every code is zero" in h.reasons[0]


def test_most_units_dead_is_a_collapse_and_some_a_warning() -> None:
    W = torch.cat([BOTH_SIGNS, torch.zeros(10, 4)])  # 10 of 18 units never fire: 56 %
    assert assess(Fixed(W), X).verdict == "collapsed"
    W = torch.cat([BOTH_SIGNS, torch.zeros(3, 4)])  # 3 of 11: 27 %
    h = assess(Fixed(W), X)
    assert h.verdict == "warning" and "27 % of its units never fire" in h.summary


def test_non_finite_weights_are_a_collapse() -> None:
    W = BOTH_SIGNS.clone()
    W[0, 0] = float("nan")
    assert assess(Fixed(W), X).verdict == "collapsed"


def test_filters_still_at_their_start_are_a_collapse() -> None:
    model = Fixed(BOTH_SIGNS)
    start = model.filters().numpy().copy()
    h = assess(model, X, initial_filters=start)
    assert h.verdict == "collapsed" and "random start" in h.summary
    moved = start + np.random.default_rng(0).normal(0, 1, start.shape)
    assert assess(model, X, initial_filters=moved).verdict == "healthy"
