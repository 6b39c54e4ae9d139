"""Discriminative recurrent sparse auto-encoder, DrSAE (Rolfe & LeCun, ICLR 2013, arXiv:1301.3775).

Encoder, unrolled for T iterations that share E, S and b (x: (P,), z: (N,)):

    z⁰ = 0,    zᵗ⁺¹ = ReLU(E x + S zᵗ − b),    z = zᵀ

    E: (N, P)  S: (N, N)  b: (N,)  D: (P, N) decoder, columns = atoms  C: (n_classes, N), c

Loss per sample:  ½‖x − D z‖² + λ‖z‖₁ + w · CE(C ẑ + c, y),   ẑ = z / ‖z‖

- With E = αDᵀ, S = I − αDᵀD, b = αλ the encoder is exactly non-negative ISTA with step α: the
  model starts there, on a random dictionary, with α = min(1/‖D‖², the bound on E's rows).
- Constraints after every step (paper): columns of D norm ≤ 1, rows of E ≤ 1.25/(T−1), rows of
  C ≤ 5 (`constrain`).
- Learning rates (`param_groups`): E and b are used T times in the unrolled net, S T−1 times, so
  their rates are divided by that (paper); b's further by `bias_lr`, C's (and its bias's) set
  by `classifier_lr` (paper: 1/5); after pre-training E, S, b and D by `finetune_lr`.
- Training: `pretrain_steps` optimiser steps of unsupervised pre-training on reconstruction +
  L1 (the classifier is fitted meanwhile on the codes with their gradient stopped, so the
  encoder and decoder see no label), then fine-tuning with the classification loss added at
  weight `class_weight` (paper: 1, equal weight). The phase follows the `steps_done`
  buffer, which travels with the weights, so a resumed run continues in the right phase.

Defaults (measured on the bundled 4,000 / 1,000 MNIST split; see the bench, `python -m
sparse_models bench drsae`): SGD with momentum 0.9 at base rate 1 (per-sample mean losses,
batch 50), the paper's per-matrix scaling for E, S and D, 1,200 steps (15 epochs) of pre-training
then 2,000 of fine-tuning, λ = 0.02. Three departures from the paper, each needed here:
- Adam (the previous default, 4.5 % test error) normalises each weight's step, so E's small
  entries (≈ α/28) random-walk away from D within two epochs and nearly every unit ended
  categorical (1 part-unit of 400); with SGD E stays ISTA-like while pre-training.
- b's rate is 0.03 × E's (`bias_lr`): the gradient reaching b is amplified by the recurrence
  (≈ (I − S)⁻¹ ≈ (αDᵀD)⁻¹) while b ≈ αλ is tiny, and at E's rate the thresholds grew until
  every unit died.
- While fine-tuning, E, S, b and D learn at 0.1 × their pre-training rates (`finetune_lr`), C at
  its own, and the classification loss weighs 0.3: at full rate and weight the classification
  gradient (≈ ‖C‖/‖z‖, tens of times the reconstruction's) raised b and killed 398 units.
One run of these settings: 4.0 % test error, 48 part-units and 58 categorical ones (144 dead).
The categorical decoders are whole-digit prototypes; the part-units' decoders are noisy partial
digits, not the pen strokes of the paper. Pre-training as long as the paper does (100 epochs:
`pretrain_steps=8000`, `train.steps=10000`, 2 min on 2 cores) brings the strokes: 3.1 % test
error, 31 part-units whose decoders are stroke and arc fragments (those that fire on only a
few inputs stay noisy), 64 categorical ones, 140 dead; the shipped `drsae-mnist` is that run.
The default keeps the 15 epochs so that a retrain from the page takes well under a minute.
λ = 0.01 and 0.005 left more units alive but ended at 5 % with fewer part-units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import check, check_ranges, setting
from .base import PatchModel, register
from .penalties import lipschitz

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..training.optim import Optimizer


@dataclass(frozen=True)
class DrSAEConfig:
    input_shape: tuple[int, int] = setting((28, 28), label="Input (h, w)", form=False)  # from the data
    n_units: int = setting(400, label="Number of units", min=1, max=4096, shape=True,
                           help="Code units N (paper: 400; 200 gives 1.21 % on MNIST).")
    n_iter: int = setting(11, label="Iterations T", min=1, max=100, shape=True,
                          help="Unrolled encoder iterations sharing E, S and b (paper: 11; "
                               "T = 2 gives 1.49 % on MNIST).")
    lam: float = setting(0.02, label="λ (sparsity weight)", min=0.0, max=10.0,
                         help="Weight of the L1 penalty on the final code; also the initial "
                              "threshold b = αλ. The paper does not state it.")
    n_classes: int = setting(10, label="Classes", min=2, max=1000, shape=True,
                             help="Outputs of the linear classifier.")
    class_weight: float = setting(0.3, label="Classification weight", min=0.0, max=100.0,
                                  help="Weight of the classification loss while fine-tuning "
                                       "(paper: 1, equal to the reconstruction + L1 terms; 0.3 "
                                       "kept more part-units here).")
    pretrain: bool = setting(True, label="Unsupervised pre-training",
                             help="Start with reconstruction + L1 only (the paper does).")
    pretrain_steps: int = setting(1200, label="Pre-training steps", min=0, max=10_000_000,
                                  when={"pretrain": True},
                                  help="Optimiser steps of pre-training before the "
                                       "classification loss joins (with batches of 50 on "
                                       "4,000 images, 80 steps are one epoch).")
    d_col_max: float = setting(1.0, label="Max decoder column norm", min=1e-6, max=100.0,
                               help="Columns of D are projected to norm ≤ this (paper: 1).")
    e_row_scale: float = setting(1.25, label="Encoder row bound × (T−1)", min=1e-6, max=100.0,
                                 help="Rows of E are kept to norm ≤ this / (T−1) (paper: "
                                      "1.25); for T = 1, ≤ this.")
    c_row_max: float = setting(5.0, label="Max classifier row norm", min=1e-6, max=1000.0,
                               help="Rows of C are projected to norm ≤ this (paper: 5).")
    scale_lr: bool = setting(True, label="Scale rates by repeats",
                             help="Divide the learning rate of E and b by T and of S by T − 1, "
                                  "how often each repeats in the unrolled net (paper).")
    classifier_lr: float = setting(0.02, label="Classifier rate factor", min=0.0, max=100.0,
                                   help="C's learning rate is the base rate times this "
                                        "(paper: divided by 5, i.e. 0.2; 0.02 with the SGD "
                                        "default here).")
    bias_lr: float = setting(0.03, label="Threshold rate factor", min=0.0, max=100.0,
                             help="b's learning rate as a multiple of E's. b is ~20× smaller "
                                  "than a row of E but gets as large a gradient: at E's rate "
                                  "(the paper's 1) SGD raised the thresholds until units died.")
    momentum: float = setting(0.9, label="SGD momentum", min=0.0, max=0.999,
                              help="Momentum of every matrix with train.optimizer=sgd (Adam "
                                   "ignores it).")
    finetune_lr: float = setting(0.1, label="Fine-tuning rate factor", min=0.0, max=100.0,
                                 help="After pre-training, the rates of E, S, b and D are "
                                      "multiplied by this (C keeps its rate): at full rate the "
                                      "classification gradient, far larger than the "
                                      "reconstruction's, moved D and E apart and killed units.")
    part_angle: float = setting(0.5, label="Part-unit angle (rad)", min=0.0, max=3.1416,
                                help="Analysis: units whose encoder row and decoder column are "
                                     "closer than this are part-units (paper: 0.5, heuristic).")
    categorical_angle: float = setting(0.7, label="Categorical-unit angle (rad)", min=0.0,
                                       max=3.1416,
                                       help="Analysis: units farther apart than this are "
                                            "categorical units (paper: 0.7, heuristic).")
    seed: int = setting(0, label="Model seed (initial weights)", min=0, max=2**31 - 1)

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 2 and min(int(v) for v in self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(isinstance(self.n_iter, int) and self.n_iter >= 1,
              f"DrSAE needs at least one encoder iteration (model.n_iter = T ≥ 1), got "
              f"{self.n_iter!r}")
        check(isinstance(self.n_units, int) and self.n_units >= 1,
              f"DrSAE needs at least one code unit (model.n_units ≥ 1), got {self.n_units!r}")
        check_ranges(self, "model.")
        check(self.part_angle <= self.categorical_angle,
              f"the part-unit angle ({self.part_angle:g} rad) must not exceed the "
              f"categorical-unit angle ({self.categorical_angle:g} rad)")

    @property
    def e_row_max(self) -> float:
        return self.e_row_scale / max(self.n_iter - 1, 1)


@register
class DrSAE(PatchModel):
    name = "drsae"
    Config = DrSAEConfig
    description = "Discriminative recurrent sparse auto-encoder: unrolled ISTA-like encoder + classifier."
    blurb = ("An encoder that iterates zᵗ⁺¹ = ReLU(Ex + Szᵗ − b) T times (it starts as ISTA), a "
             "linear decoder and a linear classifier, trained first to reconstruct sparsely and "
             "then to classify as well. Its units split into *part-units*, whose decoders are "
             "pen strokes, and *categorical units*, whose decoders are whole-digit prototypes "
             "and which compete through S.")
    energy_latex = (r"z^{t+1}=\mathrm{ReLU}(Ex+Sz^t-b),\ "
                    r"L=\tfrac12\lVert x-Dz^T\rVert^2+\lambda\lVert z^T\rVert_1"
                    r"+\mathrm{CE}\big(C\,z^T/\lVert z^T\rVert,\,y\big)")
    paper = "Rolfe & LeCun, Discriminative recurrent sparse auto-encoders, ICLR 2013"
    filter_notes = {"decoder": "columns of D: part-units draw strokes, categorical units whole digits",
                    "encoder": "rows of E: what each unit takes from the input directly"}
    supervised = True
    preset = {"data": {"source": "mnist"},
              "train": {"steps": 3200, "batch_size": 50, "lr": 1.0, "optimizer": "sgd",
                        "eval_every": 400, "log_every": 20, "snapshot_every": 0,
                        "checkpoint_every": 800}}
    tiny = {"model.n_units": 16, "model.n_iter": 3, "model.pretrain_steps": 3,
            "data.source": "digits", "train.steps": 6, "train.batch_size": 32,
            "train.log_every": 2, "train.snapshot_every": 2, "train.eval_every": 3}

    def __init__(self, config: DrSAEConfig) -> None:
        super().__init__(config)
        c = config
        P = int(c.input_shape[0]) * int(c.input_shape[1])
        g = torch.Generator().manual_seed(c.seed)
        D = torch.randn(P, c.n_units, generator=g)
        D = D / D.norm(dim=0, keepdim=True) * min(c.d_col_max, 1.0)
        alpha = min(1.0 / lipschitz(D.T), c.e_row_max / float(D.norm(dim=0).max()))
        self.D = nn.Parameter(D)  # (P, N)
        self.E = nn.Parameter((alpha * D.T).contiguous())  # (N, P)
        self.S = nn.Parameter(torch.eye(c.n_units) - alpha * D.T @ D)  # (N, N)
        self.b = nn.Parameter(torch.full((c.n_units,), alpha * c.lam))  # (N,)
        C = torch.randn(c.n_classes, c.n_units, generator=g) * 0.01
        self.C = nn.Parameter(C)  # (n_classes, N)
        self.c = nn.Parameter(torch.zeros(c.n_classes))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.alpha = alpha  # the ISTA step the encoder started from

    @property
    def n_units(self) -> int:
        return self.config.n_units

    @classmethod
    def summarize_config(cls, config: DrSAEConfig) -> str:
        return f"{config.n_units} units, T={config.n_iter}, λ={config.lam:g}"

    # --- the network ---------------------------------------------------------------------
    def iterates(self, x: torch.Tensor) -> torch.Tensor:
        """Codes after each iteration t = 1..T. x: (B, P) -> (T, B, N)"""
        drive = torch.addmm(-self.b, x, self.E.T)  # (B, N): E x − b, the same every iteration
        z = torch.relu(drive)
        out = [z]
        for _ in range(self.config.n_iter - 1):
            z = torch.relu(torch.addmm(drive, z, self.S.T))
            out.append(z)
        return torch.stack(out)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The final code zᵀ. x: (B, P) -> (B, N)"""
        drive = torch.addmm(-self.b, x, self.E.T)
        z = torch.relu(drive)
        for _ in range(self.config.n_iter - 1):
            z = torch.relu(torch.addmm(drive, z, self.S.T))
        return z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """D z. z: (B, N) -> (B, P)"""
        return z @ self.D.T

    def class_logits(self, z: torch.Tensor) -> torch.Tensor:
        """C z/‖z‖ + c (an all-zero code gives the bias alone). z: (B, N) -> (B, n_classes)"""
        zn = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return torch.addmm(self.c, zn, self.C.T)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class per input. x: (B, P) -> (B,) long"""
        return self.class_logits(self.encode(x)).argmax(-1)

    @property
    def pretraining(self) -> bool:
        c = self.config
        return c.pretrain and int(self.steps_done) < c.pretrain_steps

    # --- training -----------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self._head(x, y, self.encode(x))

    def _head(self, x: torch.Tensor, y: torch.Tensor | None,
              z: torch.Tensor) -> dict[str, torch.Tensor]:
        """The loss terms of a code z: (B, N) (the decoder, L1 and classifier part of `loss`)."""
        r = x - self.decode(z)
        recon = 0.5 * (r * r).sum(-1).mean()
        sparsity = self.config.lam * z.sum(-1).mean()  # z ≥ 0: Σz = ‖z‖₁
        total = recon + sparsity
        terms = {"reconstruction": recon, "sparsity": sparsity}
        if y is not None:
            pre = self.pretraining
            logits = self.class_logits(z.detach() if pre else z)
            ce = F.cross_entropy(logits, y)
            # While pre-training, C learns on the fixed codes; the encoder sees no label.
            total = total + (ce if pre else self.config.class_weight * ce)
            terms["classification"] = ce
            terms["error"] = (logits.argmax(-1) != y).float().mean()
        return {"loss": total, **terms}

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None,
                   optimizer: Optimizer) -> dict[str, torch.Tensor]:
        self._set_phase_rates(optimizer)
        terms = super().train_step(x, y, optimizer)
        self.steps_done += 1
        return terms

    @torch.no_grad()
    def constrain(self) -> None:
        c = self.config
        _clip_norms(self.D, c.d_col_max, dim=0)
        _clip_norms(self.E, c.e_row_max, dim=1)
        _clip_norms(self.C, c.c_row_max, dim=1)

    def lr_scales(self, finetuning: bool = False) -> dict[str, float]:
        """Each parameter's learning rate as a multiple of the base rate (`param_groups`), while
        pre-training or (`finetuning`) after it."""
        c = self.config
        T = c.n_iter
        rep = (lambda k: 1.0 / max(k, 1)) if c.scale_lr else (lambda k: 1.0)
        f = c.finetune_lr if finetuning else 1.0
        return {"E": f * rep(T), "b": f * c.bias_lr * rep(T), "S": f * rep(T - 1), "D": f,
                "C": c.classifier_lr, "c": c.classifier_lr}

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        pre, fine = self.lr_scales(), self.lr_scales(finetuning=True)
        # `phase_lr` is read by `train_step`, which switches to the fine-tuning rates (it is
        # saved with the optimiser, so a resumed run keeps both).
        return [{"params": [getattr(self, k)], "lr": lr * (pre if self.pretraining else fine)[k],
                 "phase_lr": [lr * pre[k], lr * fine[k]], "momentum": self.config.momentum,
                 "name": k} for k in pre]

    def _set_phase_rates(self, optimizer: Optimizer) -> None:
        phase = 0 if self.pretraining else 1
        for g in optimizer.param_groups:
            if "phase_lr" in g:
                g["lr"] = g["phase_lr"][phase]

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None,
                 batch_size: int = 1000) -> dict[str, float]:
        """The loss terms and explained variance (as every model), the mean number of active
        units `l0`, and with labels the `error` rate over all of x."""
        out = super().evaluate(x, y, batch_size)
        active = sum(float((self.encode(x[s:s + batch_size]) > 0).sum())
                     for s in range(0, x.shape[0], batch_size))
        out["l0"] = active / max(x.shape[0], 1)
        return out

    # --- what it declares ---------------------------------------------------------------
    def filter_kinds(self) -> tuple[str, ...]:
        return ("decoder", "encoder")

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        self.check_filter_kind(kind)
        return self.filters_of(self.D.T.contiguous() if kind == "decoder" else self.E)

    def extra_state_for_ui(self) -> dict[str, Any]:
        return {"S": self.S.detach().cpu(), "C": self.C.detach().cpu(),
                "b": self.b.detach().cpu()}


def _clip_norms(w: torch.Tensor, bound: float, dim: int) -> None:
    """Scale w's columns (dim=0: norms taken down each column) or rows (dim=1) to norm ≤ bound,
    in place."""
    norms = w.norm(dim=dim, keepdim=True)
    w.mul_(torch.clamp(bound / norms.clamp_min(1e-12), max=1.0))

