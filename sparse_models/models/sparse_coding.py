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

from ..config import check, check_ranges, setting
from .base import PatchModel, register
from .penalties import fista, ista, lasso_objective, lipschitz


@dataclass(frozen=True)
class SparseCodingConfig:
    input_shape: tuple[int, int] = setting((12, 12), label="Input (h, w)", form=False)  # from the data
    n_units: int = setting(256, label="Number of units", min=1, max=4096, shape=True,
                           help="Dictionary size K: how many atoms the model learns.")
    lam: float = setting(0.5, label="λ (sparsity weight)", min=0.0, max=100.0,
                         help="Weight of the L1 penalty (the same scale as scikit-learn's "
                              "alpha): larger means fewer active units.")
    solver: Literal["fista", "ista"] = setting("fista", label="Solver",
                                               help="The inference algorithm.")
    n_iter: int = setting(50, label="Solver iterations", min=1, max=10_000,
                          help="Solver iterations per batch.")
    positive: bool = setting(False, label="Non-negative codes")
    seed: int = setting(0, label="Model seed (initial weights)", min=0, max=2**31 - 1)

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 2 and min(self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(self.solver in ("fista", "ista"), f"solver must be fista or ista, got {self.solver!r}")
        check_ranges(self, "model.")


@register
class SparseCoding(PatchModel):
    name = "sparse_coding"
    Config = SparseCodingConfig
    description = "Dictionary learning with L1-sparse codes found by ISTA/FISTA (no structure)."
    blurb = ("Plain sparse coding (Olshausen & Field 1996): every unit is penalised on its own, "
             "so units learn edge-like filters but in no particular order. The baseline for the "
             "structured models.")
    energy_latex = (r"E(x,z)=\tfrac12\lVert x-zD\rVert^2+\lambda\lVert z\rVert_1,"
                    r"\quad z^*=\arg\min_z E")
    paper = "Olshausen & Field, Nature 1996; FISTA: Beck & Teboulle, SIAM J. Imaging Sci. 2009"
    preset = {"train": {"steps": 300, "batch_size": 256, "lr": 1e-2}}
    tiny = {"model.n_units": 16, "model.n_iter": 10, "data.source": "gratings",
            "data.patch_size": 6, "data.n_patches": 128, "train.steps": 4,
            "train.batch_size": 32, "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: SparseCodingConfig) -> None:
        super().__init__(config)
        h, w = config.input_shape
        g = torch.Generator().manual_seed(config.seed)
        D = torch.randn(config.n_units, h * w, generator=g)
        self.D = nn.Parameter(D / D.norm(dim=1, keepdim=True))  # (K, P)

    @property
    def n_units(self) -> int:
        return self.config.n_units

    @classmethod
    def summarize_config(cls, config: SparseCodingConfig) -> str:
        return f"{config.n_units} units, no pools, λ={config.lam:g}"
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
        self.check_filter_kind(kind)
        return self.filters_of(self.D)
