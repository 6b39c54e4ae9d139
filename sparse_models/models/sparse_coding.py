"""Plain sparse coding: a learned dictionary with unit-norm atoms and ISTA/FISTA inference.

Energy (Olshausen & Field 1996; solver: Beck & Teboulle 2009):

    E(x, z) = ½‖x − zD‖² + λ‖z‖₁        x: (B, P), z: (B, K), D: (K, P) atoms as rows

Inference finds z* = argmin_z E(x, z) by ISTA or FISTA (no gradient flows through it); the
learning step is one gradient step on ½‖x − z*D‖² with respect to D, then every atom is
renormalised to unit length. This is the baseline the structured models are compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import check
from .base import SparseModel, register
from .penalties import fista, ista, lasso_objective, lipschitz


@dataclass(frozen=True)
class SparseCodingConfig:
    input_shape: tuple[int, int] = (12, 12)  # (h, w) of one patch; set from the data
    n_units: int = 256  # dictionary size K
    lam: float = 0.5  # λ, weight of the L1 penalty (same scale as scikit-learn's alpha)
    solver: Literal["fista", "ista"] = "fista"  # inference algorithm
    n_iter: int = 50  # solver iterations per batch
    positive: bool = False  # non-negative codes
    seed: int = 0  # initial dictionary

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 2 and min(self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(self.n_units >= 1, f"n_units must be at least 1, got {self.n_units}")
        check(self.lam >= 0, f"lam must be non-negative, got {self.lam}")
        check(self.solver in ("fista", "ista"), f"solver must be fista or ista, got {self.solver!r}")
        check(1 <= self.n_iter <= 10_000, f"n_iter must be in 1..10000, got {self.n_iter}")


@register
class SparseCoding(SparseModel):
    name = "sparse_coding"
    Config = SparseCodingConfig
    description = "Dictionary learning with L1-sparse codes found by ISTA/FISTA (no structure)."

    def __init__(self, config: SparseCodingConfig) -> None:
        super().__init__(config)
        h, w = config.input_shape
        g = torch.Generator().manual_seed(config.seed)
        D = torch.randn(config.n_units, h * w, generator=g)
        self.D = nn.Parameter(D / D.norm(dim=1, keepdim=True))  # (K, P)

    @property
    def n_units(self) -> int:
        return self.config.n_units

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.config.input_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Optimal codes z*: (B, K) for x: (B, P)."""
        c = self.config
        D = self.D.detach()
        if c.solver == "ista":
            return ista(x, D, c.lam, c.n_iter, c.positive, L=lipschitz(D))
        # A fixed number of global steps: on training batches (a few hundred rows) per-row
        # backtracking costs more in small-tensor overhead than its better steps save.
        return fista(x, D, c.lam, c.n_iter, c.positive, L=lipschitz(D), backtrack=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.D

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        r = x - self.decode(z)
        recon = 0.5 * (r * r).sum(-1).mean()
        sparsity = self.config.lam * z.abs().sum(-1).mean()
        return {"loss": recon + sparsity, "reconstruction": recon, "sparsity": sparsity}

    def objective(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return lasso_objective(x, self.D.detach(), z, self.config.lam)

    @torch.no_grad()
    def constrain(self) -> None:
        self.D.div_(self.D.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def filter_kinds(self) -> tuple[str, ...]:
        return ("decoder",)

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        if kind not in self.filter_kinds():
            raise ValueError(f"{self.name} has no {kind!r} filters; it has {self.filter_kinds()}")
        return self.D.detach().cpu().reshape(self.n_units, *self.input_shape)
