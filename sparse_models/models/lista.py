"""LISTA: a learned T-step approximation of sparse coding (Gregor & LeCun, ICML 2010, "Learning
fast approximations of sparse coding").

For a fixed dictionary D: (K, P) (atoms as rows) and the lasso  z* = argmin ½‖x − zD‖² + λ‖z‖₁,
the encoder runs T steps that share W_e, S and θ (x: (P,), z: (K,)):

    z⁰ = 0,    zᵗ⁺¹ = h_θ(W_e x + S zᵗ)        h_θ: soft-shrink by θ (per unit; ReLU(· − θ) when
                                                  codes are non-negative)

It starts as ISTA — W_e = Dᵀ/L, S = I − DᵀD/L, θ = λ/L, L = ‖D‖² — so LISTA(T) before training
gives exactly T steps of ISTA, and is trained to regress the optimal codes: loss ½‖zᵀ − z*‖²,
with z* from FISTA run to convergence on each batch (`target_iter`, `target_tol`; z* depends
only on x, so each distinct input's is solved once per run and kept in memory).

Training (measured on the 4,000-image MNIST subset, relative code error Σ‖zᵀ − z*‖² / Σ‖z*‖² on
training / test images). With the former 100-atom teacher at T = 3, the bare training set
overfits (0.008 / 0.042 after 3,000 steps of Adam at 1e-3), so each training image is moved by
up to `augment_shift` pixels at random: 1 pixel gives nine times as many distinct inputs (0.030 /
0.030 after the same steps). With the shipped 400-atom teacher at T = 5, 12,000 steps and shifts
of up to 2 pixels, Adam at a constant 1e-4 reaches 0.058 on the test images, and a constant 3e-4
stalls near 0.13 (W_e's entries are ~5e-4, smaller than Adam's first steps). The trainer's
schedule fixes that: a linear warm-up over 2,000 steps, then a cosine decay to 0
(`train.lr_warmup`, `train.lr_decay`). With a peak of 1e-3 and batches of 100 the test error is
0.035 (a peak of 3e-4: 0.045, 3e-3: 0.052); larger batches do better, 200 / 400 / 800 giving
0.029 / 0.027 / 0.026, and batches of 400 at a peak of 2e-3, the preset, 0.026 (18,000 steps of
it: 0.027). Beyond that, the number of images limits it: at batches of 100,
1,000 / 2,000 / 4,000 training images give 0.061 / 0.042 / 0.035 while the training error is
0.011 / 0.015 / 0.018, and 36,000 steps give 0.031. Shifts of up to 3 pixels (0.037), affine and
elastic distortions of the training images (up to 12°, 10 % scale, 2.5 px, a 1 px smooth warp;
0.034 after 36,000 steps) and pulling W_e and S towards their ISTA values did not help;
per-step thresholds, or per-matrix rates, did not help under the constant rate. (Those figures
come from a stand-alone loop of this model's equations on the same optimal codes, one thread
each; `bench drsae` trains this model.) `lr_half_life`, an older schedule kept so runs made
with it still load, halves the rate every so many steps.

The dictionary comes from another run (`teacher`: a run folder of a model whose decoder is a
linear dictionary, e.g. sparse_coding on the same data; its λ and sign constraint are taken too
unless `match_teacher` is off), or, without a teacher, is a random unit-norm dictionary. It is
stored with the weights, so a LISTA run reloads without its teacher.

`analysis.code_error.code_error_curves` gives the code error against iterations of ISTA, FISTA
and a LISTA model on one dictionary and batch (the page's LISTA view and the benchmark).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import ConfigError, check, check_ranges, setting
from .base import PatchModel, register
from .penalties import fista_solve, lipschitz, shrink

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..training.optim import Optimizer


@dataclass(frozen=True)
class ListaConfig:
    input_shape: tuple[int, int] = setting((28, 28), label="Input (h, w)", form=False)  # from the data
    teacher: str = setting("", label="Teacher run (folder)", url=False,
                           help="A run of a dictionary model (e.g. sparse_coding on the same "
                                "data) whose dictionary LISTA learns to encode for; empty: a "
                                "random unit-norm dictionary of `n_units` atoms.")
    n_units: int = setting(256, label="Number of units", min=1, max=4096, shape=True,
                           help="Atoms of the random dictionary (a teacher's sets its own).")
    match_teacher: bool = setting(True, label="λ and sign from the teacher",
                                  help="Take λ and the non-negativity of the codes from the "
                                       "teacher's settings (when it has them).")
    lam: float = setting(0.1, label="λ (sparsity weight)", min=0.0, max=100.0,
                         help="λ of the lasso whose optimal codes LISTA regresses.")
    positive: bool = setting(False, label="Non-negative codes")
    n_iter: int = setting(3, label="Iterations T", min=1, max=100, shape=True,
                          help="Unrolled steps of the learned encoder.")
    target_iter: int = setting(500, label="FISTA iterations for the targets", min=1,
                               max=100_000,
                               help="At most this many FISTA iterations find each batch's "
                                    "optimal codes.")
    target_tol: float = setting(1e-6, label="FISTA tolerance for the targets", min=1e-12,
                                max=0.1, help="Duality gap, relative to ‖x‖², at which a "
                                              "sample's optimal code is taken as found.")
    augment_shift: int = setting(2, label="Random shift of training images (pixels)", min=0,
                                 max=4, help="Each training image is moved by up to this many "
                                             "pixels in each direction, at random (its norm "
                                             "kept): more distinct inputs than the training set "
                                             "holds, which the encoder otherwise overfits. 0: off.")
    lr_half_life: int = setting(0, label="Learning-rate half-life (steps)", min=0,
                                max=10_000_000, help="The learning rate halves every this many "
                                                     "steps; 0: constant.")
    seed: int = setting(0, label="Model seed (random dictionary)", min=0, max=2**31 - 1)
    # The teacher's atom count once its folder has been read: the run then reloads without it.
    teacher_units: int = setting(0, label="Teacher's units", min=0, max=4096, form=False,
                                 url=False)

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 2 and min(int(v) for v in self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(isinstance(self.n_iter, int) and self.n_iter >= 1,
              f"LISTA needs at least one iteration (model.n_iter = T ≥ 1), got {self.n_iter!r}")
        check(isinstance(self.teacher, str), f"model.teacher must be a run folder, got "
                                             f"{self.teacher!r}")
        check_ranges(self, "model.")


def find_teacher(teacher: str) -> Path | None:
    """The teacher's run folder: as given (relative to the working folder), else relative to the
    repository (shipped runs: `checkpoints/NAME`); None when neither exists."""
    from ..training.runs import REPO_ROOT

    for p in (Path(teacher).expanduser(), REPO_ROOT / teacher):
        if p.is_dir():
            return p
    return None


def teacher_dictionary(path: Path | str) -> tuple[torch.Tensor, dict[str, Any]]:
    """The linear dictionary D: (K, P) of a trained run, and {model, input_shape, lam?,
    positive?}; ConfigError in words when the run cannot be read or its decoder is not a
    linear dictionary x̂ = zD."""
    from ..training.runs import RunError, load_run

    try:
        run = load_run(path)
    except (RunError, ConfigError) as exc:
        raise ConfigError(f"model.teacher: cannot use {path} as the teacher: {exc}") from None
    m = run.model
    what = f"model.teacher: {path} is a {run.config.model!r} run"
    if "decoder" not in m.filter_kinds():
        raise ConfigError(f"{what} without decoder filters, not a dictionary model (train one "
                          f"with `python -m sparse_models train sparse_coding`)")
    with torch.no_grad():
        D = m.filters("decoder").reshape(m.n_units, -1).float()
        z = torch.rand(4, m.n_units, generator=torch.Generator().manual_seed(0))
        x_hat = m.decode(z).reshape(4, -1).float()
    if x_hat.shape[1] != D.shape[1] or not torch.allclose(x_hat, z @ D, rtol=1e-4, atol=1e-5):
        raise ConfigError(f"{what} whose decoder is not a linear dictionary (x̂ = zD over its "
                          f"decoder filters); LISTA needs one, e.g. a sparse_coding run")
    info: dict[str, Any] = {"model": run.config.model, "input_shape": tuple(m.input_shape)}
    for key in ("lam", "positive"):
        if hasattr(run.config.model_config, key):
            info[key] = getattr(run.config.model_config, key)
    return D, info


@register
class Lista(PatchModel):
    name = "lista"
    Config = ListaConfig
    description = "LISTA: a T-step learned encoder trained to give a dictionary's optimal sparse codes."
    blurb = ("ISTA unrolled for a few steps whose matrices and thresholds are then learned "
             "(Gregor & LeCun 2010): trained to output the optimal sparse codes of a fixed "
             "dictionary, it reaches in T steps the code error that ISTA or FISTA need many "
             "more iterations for.")
    energy_latex = (r"z^{t+1}=h_\theta(W_e x+S z^t),\ "
                    r"L=\tfrac12\lVert z^T-z^*\rVert^2,\ "
                    r"z^*=\arg\min_z\tfrac12\lVert x-zD\rVert^2+\lambda\lVert z\rVert_1")
    paper = "Gregor & LeCun, Learning fast approximations of sparse coding, ICML 2010"
    filter_notes = {"encoder": "rows of W_e (they start as the atoms / L)",
                    "decoder": "the teacher's dictionary (fixed)"}
    # The shipped sparse-coding run on the bundled MNIST split is the default teacher, so
    # `train lista` works out of the box (checkpoints/README.md).
    preset = {"model": {"teacher": "checkpoints/sparse-coding-mnist"},
              "data": {"source": "mnist", "version": "subset"},
              "train": {"steps": 12000, "batch_size": 400, "lr": 2e-3, "lr_warmup": 2000,
                        "lr_decay": "cosine", "eval_every": 1000,
                        "snapshot_every": 0}}
    tiny = {"model.teacher": "", "model.n_units": 16, "model.n_iter": 2, "model.target_iter": 50,
            "data.source": "digits", "train.steps": 4, "train.lr_warmup": 0, "train.batch_size": 32,
            "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: ListaConfig) -> None:
        super().__init__(config)
        c = config
        P = int(c.input_shape[0]) * int(c.input_shape[1])
        path = find_teacher(c.teacher) if c.teacher else None
        if path is not None:
            D = teacher_dictionary(path)[0]
        else:  # no teacher, or a vanished one whose dictionary the saved weights hold
            g = torch.Generator().manual_seed(c.seed)
            D = torch.randn(c.n_units, P, generator=g)
            D = D / D.norm(dim=1, keepdim=True)
        check(D.shape == (c.n_units, P), f"the teacher's dictionary is {tuple(D.shape)}, "
                                          f"not ({c.n_units}, {P})")
        L = lipschitz(D)
        self.D = nn.Parameter(D.clone(), requires_grad=False)  # (K, P), fixed
        self.We = nn.Parameter(D / L)  # (K, P): W_e x = x @ We.T
        self.S = nn.Parameter(torch.eye(c.n_units) - D @ D.T / L)  # (K, K)
        self.theta = nn.Parameter(torch.full((c.n_units,), c.lam / L))  # (K,)
        self._targets: dict[bytes, torch.Tensor] = {}  # input's digest -> z*: (K,)
        self._shifted: set[bytes] = set()  # digests of the images whose shifts are solved
        self._targets_of = -1  # the version of D those were solved for
        self._L = L

    @classmethod
    def adapt_config(cls, config: ListaConfig, input_shape: tuple[int, int, int]) -> ListaConfig:
        config = super().adapt_config(config, input_shape)
        if not config.teacher:
            return config
        path = find_teacher(config.teacher)
        if path is None:
            if config.teacher_units:  # made earlier: its dictionary is in the weights
                return config
            raise ConfigError(f"model.teacher: no run folder at {config.teacher}")
        D, info = teacher_dictionary(path)
        if tuple(info["input_shape"]) != tuple(input_shape):
            _, h, w = info["input_shape"]
            raise ConfigError(f"model.teacher: {config.teacher} learned {h}×{w} inputs but this "
                              f"data has {input_shape[1]}×{input_shape[2]}; train LISTA on the "
                              f"teacher's data (its data.source and size)")
        changes: dict[str, Any] = {"n_units": int(D.shape[0]), "teacher_units": int(D.shape[0])}
        if config.match_teacher:
            changes.update({k: info[k] for k in ("lam", "positive") if k in info})
        return replace(config, **changes)

    @property
    def n_units(self) -> int:
        return self.config.n_units

    @classmethod
    def summarize_config(cls, config: ListaConfig) -> str:
        who = Path(config.teacher).name if config.teacher else "random dictionary"
        return f"T={config.n_iter}, {config.n_units} units, λ={config.lam:g}, {who}"

    def _h(self, u: torch.Tensor) -> torch.Tensor:
        if self.config.positive:
            return torch.relu(u - self.theta)
        return shrink(u, self.theta)

    def iterates(self, x: torch.Tensor) -> torch.Tensor:
        """Codes after each step t = 1..T. x: (B, P) -> (T, B, K)"""
        drive = x @ self.We.T  # (B, K)
        z = self._h(drive)
        out = [z]
        for _ in range(self.config.n_iter - 1):
            z = self._h(torch.addmm(drive, z, self.S.T))
            out.append(z)
        return torch.stack(out)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.iterates(x)[-1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.D

    def optimal_codes(self, x: torch.Tensor) -> torch.Tensor:
        """z* of the teacher's lasso by FISTA to convergence. x: (B, P) -> (B, K)

        Remembered per distinct input (up to `MAX_TARGETS`): training revisits each input many
        times, and solving is most of a step's cost."""
        c = self.config
        x = x.detach()
        self._check_targets()
        keys = _digests(x)
        todo = [i for i, k in enumerate(keys) if k not in self._targets]
        if todo:
            z = fista_solve(x[todo], self.D.detach(), c.lam, c.target_iter, c.positive,
                            L=self._L, tol=c.target_tol, final_gap=False)[0]
            self._targets.update(zip((keys[i] for i in todo), z, strict=True))
        return torch.stack([self._targets[k] for k in keys]).to(x.dtype)

    MAX_TARGETS = 400_000

    def _check_targets(self) -> None:
        if self._targets_of != self.D._version or len(self._targets) > self.MAX_TARGETS:
            self._targets, self._shifted, self._targets_of = {}, set(), self.D._version
            self._L = lipschitz(self.D.detach())

    def shifts(self, x: torch.Tensor) -> torch.Tensor:
        """Every image of x moved by each (dy, dx) with |dy|, |dx| ≤ `augment_shift` (zeros come
        in at the edge), each scaled back to its image's norm. x: (B, P) -> (n_shifts, B, P)"""
        r = self.config.augment_shift
        h, w = (int(v) for v in self.config.input_shape)
        B = x.shape[0]
        padded = torch.nn.functional.pad(x.reshape(B, h, w), (r, r, r, r))
        out = torch.stack([padded[:, r - dy:r - dy + h, r - dx:r - dx + w].reshape(B, -1)
                           for dy in range(-r, r + 1) for dx in range(-r, r + 1)])
        return out * (x.norm(dim=1, keepdim=True) / out.norm(dim=2, keepdim=True).clamp_min(1e-12))

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None,
                   optimizer: Optimizer) -> dict[str, torch.Tensor]:
        half = self.config.lr_half_life
        for g in optimizer.param_groups:
            # The step count travels in the optimiser's state, so a resumed run keeps its rate.
            done = g.setdefault("lista_steps", 0)
            base = g.setdefault("base_lr", g["lr"])
            g["lr"] = base * 0.5 ** (done / half) if half else base
            g["lista_steps"] = done + 1
        if self.config.augment_shift:
            # The codes of all of a new image's shifts in one solve: a few large solves in the
            # first epoch instead of a small one at nearly every step.
            self._check_targets()
            keys = _digests(x)
            new = [i for i, k in enumerate(keys) if k not in self._shifted]
            if new:
                self.optimal_codes(self.shifts(x[new]).reshape(-1, x.shape[1]))
                self._shifted.update(keys[i] for i in new)
            xs = self.shifts(x)  # (n_shifts, B, P)
            pick = torch.randint(xs.shape[0], (x.shape[0],), device=x.device)
            x = xs[pick, torch.arange(x.shape[0], device=x.device)]
        return super().train_step(x, y, optimizer)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z_star = self.optimal_codes(x)
        z = self.encode(x)
        d = z - z_star
        err = 0.5 * (d * d).sum(-1).mean()
        r = x - self.decode(z)
        with torch.no_grad():
            rel = (d * d).sum() / (z_star * z_star).sum().clamp_min(1e-12)
        return {"loss": err, "code_error": err, "relative_code_error": rel,
                "reconstruction": 0.5 * (r * r).sum(-1).mean().detach(),
                "sparsity": self.config.lam * z.abs().sum(-1).mean().detach()}

    def filter_kinds(self) -> tuple[str, ...]:
        return ("encoder", "decoder")

    def filters(self, kind: str = "encoder") -> torch.Tensor:
        self.check_filter_kind(kind)
        return self.filters_of(self.We if kind == "encoder" else self.D)

    def default_filter_kind(self) -> str:
        return "encoder"  # the decoder is the teacher's, fixed: nothing to watch learn

    def extra_state_for_ui(self) -> dict[str, Any]:
        return {"S": self.S.detach().cpu(), "theta": self.theta.detach().cpu()}


def _digests(x: torch.Tensor) -> list[bytes]:
    """A short digest of each row of x: (B, P), to recognise an input seen before."""
    return [hashlib.blake2b(r.tobytes(), digest_size=16).digest()
            for r in x.detach().float().cpu().numpy()]
