"""Topographic group-sparse auto-encoder (Kavukcuoglu, Ranzato, Fergus & LeCun, CVPR 2009).

Energy, per sample:

    E(x, z) = ½‖x − zD‖² + λ Σ_j sqrt(Σ_i P[j,i] z_i² + ε) + μ‖z‖₁ + α‖z − F(x)‖²
    F(x)    = g ⊙ shrink(x Mᵀ, |b|)   or   g ⊙ tanh(x Mᵀ + b)         (the feed-forward predictor)

x: (B, P) patches, z: (B, K) codes, D: (K, P) decoder atoms as rows (unit norm),
M: (K, P) encoder, P: (J, K) pools from a `GroupSpec` (e.g. overlapping 3×3 neighbourhoods on
a 16×16 torus). Units sharing pools learn similar features, so filters vary smoothly across
the map: a topographic map with orientation domains and pinwheels.

With tree groups (`GroupSpec(kind="tree")`: every subtree, the subtrees of one level, or the
root-to-leaf paths of one or more complete trees as pools) the units form a tree instead of a
map (`layout` is a tree, drawn by the Tree page): the group-sparse counterpart of the lateral
model's tree-form inhibition (Gregor, Szlam & LeCun, NIPS 2011).

Two inference modes:
- `amortized`: z = F(x); encoder and decoder are trained jointly by backprop on
  ½‖x − F(x)D‖² + λ·group(F(x)). Fast; the interactive default.
- `optimal` (IPSD): z* minimises E starting from F(x) (a few majorise-minimise steps, below),
  then one gradient step on D (recon at z*) and on the predictor (α‖z* − F(x)‖²), then D's
  atoms are renormalised.

The inference step for `optimal` majorises each pool norm by a quadratic at the current z,
which turns the group penalty into a per-unit ridge weight c_i = Σ_j P[j,i]/n_j(z); with the
optional extra L1 term (weight μ = `l1`) each step is then solved in closed form:
    z ← shrink(z/η − (zD − x)Dᵀ + 2αF(x), μ) / (1/η + λc + 2α),   η = 1/‖D‖²
Each step decreases E and never divides by zero, unlike a gradient step on the square root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from ..config import check, check_ranges, setting
from ..groups import GroupSpec
from .base import Layout, PatchModel, RevivesSilentUnits, clear_optimizer_state, register
from .penalties import group_l2, lipschitz, shrink, soft_threshold

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..training.optim import Optimizer


@dataclass(frozen=True)
class TopographicConfig:
    input_shape: tuple[int, int] = setting((12, 12), label="Input (h, w)", form=False)  # from the data
    group: GroupSpec = setting(label="Group structure", default_factory=lambda: GroupSpec(
        kind="neighbourhood", map_shape=(16, 16), size=5, stride=1, wrap=True, sigma=1.0))
    lam: float = setting(0.2, label="λ (sparsity weight)", min=0.0, max=100.0,
                         help="Weight of the group-sparsity penalty: larger means fewer active "
                              "units and pools.")
    inference: Literal["amortized", "optimal"] = setting(
        "amortized", label="Inference",
        help="amortized: the code is the encoder's prediction F(x) (fast); optimal: the code "
             "minimises the energy, starting from F(x) (IPSD).")
    encoder: Literal["tanh", "shrink"] = setting(
        "shrink", label="Encoder nonlinearity", help="F(x) = g·shrink(Mx, |b|) or g·tanh(Mx + b).")
    l1: float = setting(0.3, label="Extra L1 weight (per unit)", min=0.0, max=100.0,
                        help="Adds l1·Σ|z| on top of the group penalty; 0 gives pure group "
                             "sparsity.")
    # Decoupled weight decay on M clears the input directions that whitening leaves empty
    # (they get no gradient and would keep their random start).
    encoder_decay: float = setting(
        1.0, label="Encoder weight decay", min=0.0, max=100.0,
        help="Decoupled weight decay on the encoder M. It clears the input directions that "
             "whitening leaves empty (they get no gradient), so encoder filters look clean "
             "instead of noisy. 0 turns it off.")
    alpha: float = setting(1.0, label="α (prediction weight)", min=0.0, max=100.0,
                           when={"inference": "optimal"},
                           help="Weight of the prediction term ‖z − F(x)‖² in optimal inference.")
    infer_steps: int = setting(20, label="Inference steps", min=1, max=1000,
                               when={"inference": "optimal"},
                               help="Inference iterations per batch (optimal inference).")
    eps: float = setting(1e-4, label="ε inside each pool's square root", min=1e-12, max=1.0)
    # Keeping every unit of a large map in use (off by default). On a map with many more units
    # than the patch has pixels, a blob of units takes all the patches and the others stop firing
    # for good: a silent shrink unit gets no gradient, and the encoder weight decay then shrinks
    # its filter to nothing (a 32×32 map with the defaults: 86 % of units silent).
    revive_every: int = setting(
        0, label="Revive silent units every (steps)", min=0, max=1_000_000,
        help="Every this many training steps, the units that fired on no patch since the last "
             "check are started again from the patches the model reconstructs worst (decoder "
             "atom = the residual, encoder filter and threshold like a typical live unit's). "
             "0 turns it off.")
    revive_until: int = setting(
        1000, label="Revive until step", min=0, max=10_000_000,
        help="Silent units are revived only up to this training step, so that the map can "
             "settle afterwards.")
    # Retinotopic apertures (off by default): unit (r, c) of a rows×cols map sees only a disc of
    # the h×w patch centred at ((r + ½)·h/rows − ½, (c + ½)·w/cols − ½), so neighbours on the map
    # look at neighbouring places (as the sheet model's fields do) and the filters are local.
    aperture: float = setting(
        0.0, label="Aperture radius (px)", min=0.0, max=1000.0,
        help="Each unit's encoder and decoder filters are kept inside a disc of this radius, "
             "centred at a place in the patch that moves with the unit's place on the map "
             "(retinotopy). Neighbouring units then see neighbouring places, filters are local, "
             "and the orientation map repeats about every aperture diameter × map units per "
             "pixel. Use a non-wrapping map (group.wrap off): on a torus the centres jump at the "
             "seam. 0 turns it off.")
    zero_mean: bool = setting(
        False, label="Zero-mean filters (in the aperture)",
        help="With an aperture, keep each filter's pixels inside it summing to zero, so units "
             "code local contrast rather than local brightness (no unoriented blobs). Ignored "
             "without an aperture.")
    seed: int = setting(0, label="Model seed (initial weights)", min=0, max=2**31 - 1)

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 2 and min(self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(isinstance(self.group, GroupSpec), "group must be a GroupSpec")
        check(self.inference in ("amortized", "optimal"),
              f"inference must be amortized or optimal, got {self.inference!r}")
        check_ranges(self, "model.")
        check(self.aperture == 0 or self.group.kind != "tree",
              "an aperture places each unit by its place on a 2-D map; units on a tree have "
              "none: set model.aperture=0 or use a map group kind")


@register
class Topographic(RevivesSilentUnits, PatchModel):
    name = "topographic"
    Config = TopographicConfig
    description = ("Auto-encoder with overlapping group sparsity on a 2-D map: "
                   "Gabor-like filters that vary smoothly, with pinwheels.")
    blurb = ("Units sit on a 2-D sheet and are penalised in overlapping pools of neighbours "
             "(Kavukcuoglu et al., CVPR 2009). Neighbours learn similar features, so the "
             "Gabor-like filters change smoothly across the sheet and the preferred orientation "
             "winds around isolated points: **pinwheels**, as in the visual cortex.")
    energy_latex = (r"E(x,z)=\tfrac12\lVert x-zD\rVert^2+\lambda\sum_j\sqrt{\textstyle"
                    r"\sum_{i\in P_j}w_i z_i^2}\;(+\,\ell_1\lVert z\rVert_1),\quad z=F(x)")
    paper = ("Kavukcuoglu, Ranzato, Fergus & LeCun, CVPR 2009 (topographic filter maps); "
             "Hyvärinen & Hoyer 2001")
    preset = {"train": {"steps": 2000, "batch_size": 256, "lr": 3e-3}}
    filter_notes = {"encoder": (
        "Encoder filters are the detectors F(x) uses; they are sharper than the decoder's atoms "
        "because the patches are whitened. Parts of a filter at frequencies the patches never "
        "contain get no gradient: the encoder weight decay clears them (with it set to 0 they "
        "stay as random noise).")}
    tiny = {"model.group.map_shape": [4, 4], "model.group.size": 3, "data.source": "gratings",
            "data.patch_size": 6, "data.n_patches": 128, "train.steps": 4,
            "train.batch_size": 32, "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: TopographicConfig) -> None:
        super().__init__(config)
        h, w = config.input_shape
        K, P = config.group.n_units, h * w
        g = torch.Generator().manual_seed(config.seed)
        D = torch.randn(K, P, generator=g)
        if config.aperture > 0:  # off: not even a multiplication, so the default is unchanged
            self.register_buffer("mask", torch.from_numpy(aperture_masks(config)))  # (K, P)
            D = self._masked(D)
        else:
            self.mask = None
        self.D = nn.Parameter(D / D.norm(dim=1, keepdim=True))  # (K, P)
        self.M = nn.Parameter(self.D.detach().clone())  # (K, P): starts tied, F(x) ≈ shrink(x Dᵀ)
        # A shrink threshold starting at 0 would never move (the gradient of |b| at 0 is 0).
        self.b = nn.Parameter(torch.full((K,), 0.3 if config.encoder == "shrink" else 0.0))
        self.gain = nn.Parameter(torch.ones(K))
        self.register_buffer("P", torch.from_numpy(config.group.pool_matrix()))  # (J, K)
        self.init_revival((K,))  # revival, off by default

    @property
    def n_units(self) -> int:
        return self.config.group.n_units

    @property
    def layout(self) -> Layout:
        g = self.config.group
        if g.kind == "tree":
            return Layout("tree", parents=g.tree().parents)
        return Layout("map", tuple(g.map_shape), wrap=g.kind == "neighbourhood" and g.wrap)

    def pools(self) -> torch.Tensor:
        return self.P

    @classmethod
    def summarize_config(cls, config: TopographicConfig) -> str:
        if config.group.kind == "tree":
            return f"{config.group.describe()}, λ={config.lam:g}"
        rows, cols = config.group.map_shape
        return f"{rows}×{cols} map, {config.group.describe()}, λ={config.lam:g}"

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.M], "lr": lr, "weight_decay": self.config.encoder_decay},
                {"params": [self.D, self.b, self.gain], "lr": lr, "weight_decay": 0.0}]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = g ⊙ tanh(x Mᵀ + b). x: (B, P) -> (B, K)"""
        if self.config.encoder == "tanh":
            return self.gain * torch.tanh(x @ self.M.T + self.b)
        u = x @ self.M.T
        return self.gain * shrink(u, self.b.abs())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.predict(x)
        if self.config.inference == "optimal":
            z = self.infer(x, z.detach())
        return z

    @torch.no_grad()
    def infer(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """Minimise E(x, ·) from z0 by majorise-minimise steps (module docstring). -> (B, K)"""
        c = self.config
        D = self.D.detach()
        inv_eta = lipschitz(D)
        G, b = D @ D.T, x @ D.T
        target = 2 * c.alpha * z0
        z = z0
        for _ in range(c.infer_steps):
            norms = torch.sqrt((z * z) @ self.P.T + c.eps)  # (B, J)
            weight = (1.0 / norms) @ self.P  # (B, K): Σ_j P[j,i]/n_j
            v = z * inv_eta - (z @ G - b) + target
            z = soft_threshold(v, c.l1) / (inv_eta + c.lam * weight + 2 * c.alpha)
        return z

    def energy(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E(x, z) averaged over the batch (module docstring), the quantity `infer` lowers."""
        terms = self.energy_terms(x, z)
        pred = self.config.alpha * ((z - self.predict(x)) ** 2).sum(-1).mean()
        return sum(terms.values()) + pred

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.D

    def energy_terms(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        r = x - self.decode(z)
        recon = 0.5 * (r * r).sum(-1).mean()
        terms = {"reconstruction": recon,
                 "group_sparsity": self.config.lam * group_l2(z, self.P, self.config.eps).mean()}
        if self.config.l1 > 0:
            terms["l1"] = self.config.l1 * z.abs().sum(-1).mean()
        return terms

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        c = self.config
        if c.inference == "amortized":
            f = self.predict(x)
            if self.tracks_firing:
                self.note_firing((f != 0).any(0))
            terms = self.energy_terms(x, f)
            terms["loss"] = sum(terms.values())
            return terms
        f = self.predict(x)
        if self.tracks_firing:
            self.note_firing((f != 0).any(0))
        z = self.infer(x, f.detach())
        terms = self.energy_terms(x, z)
        terms["prediction"] = c.alpha * ((z - f) ** 2).sum(-1).mean()
        # The sparsity term does not depend on the weights once z* is fixed; it is reported only.
        terms["loss"] = terms["reconstruction"] + terms["prediction"]
        return terms

    def gradients(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Amortized mode with the shrink encoder (the default) computes its gradients by hand in
        one pass (`amortized_gradients`): the same as backprop through `loss`, without the
        autograd graph, whose many small ops cost more than the matrix products at batch 256."""
        c = self.config
        if c.inference != "amortized" or c.encoder != "shrink":
            return super().gradients(x, y)
        terms, grads = self.amortized_gradients(x)
        for param, grad in zip((self.M, self.D, self.b, self.gain), grads, strict=True):
            param.grad = grad
        return terms

    @torch.no_grad()
    def amortized_gradients(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
        """The amortized loss terms and the gradients of their sum w.r.t. (M, D, b, gain).

        With u = xMᵀ, s = shrink(u, |b|), z = g ⊙ s, r = x − zD, n = sqrt(z²Pᵀ + ε), B rows:
            ∂/∂z  = (−rDᵀ + λ z ⊙ ((1/n)P) + μ sign z) / B,      ∂/∂D = −zᵀr / B
            ∂/∂u  = ∂/∂z ⊙ g ⊙ [s ≠ 0],  ∂/∂M = (∂/∂u)ᵀx,  ∂/∂g = Σ_B ∂/∂z ⊙ s,
            ∂/∂b  = −sign(b) Σ_B ∂/∂z ⊙ g ⊙ sign(s)
        (tested against autograd through `loss`).
        """
        c = self.config
        B = x.shape[0]
        M, D, b, g = self.M, self.D, self.b, self.gain
        u = x @ M.T
        s = soft_threshold(u, b.abs())  # the value of shrink(u, |b|)
        z = g * s
        if self.tracks_firing:
            self.note_firing((s != 0).any(0))
        r = torch.addmm(x, z, D, alpha=-1.0)  # x − zD
        n = torch.mm(z * z, self.P.T).add_(c.eps).sqrt_()  # pool norms (B, J)
        recon = 0.5 * torch.linalg.vecdot(r, r).sum() / B
        group = c.lam * n.sum() / B
        terms = {"reconstruction": recon, "group_sparsity": group}
        # dz = B·∂/∂z, built in place: λ z ⊙ ((1/n)P) + μ sign z − rDᵀ
        dz = torch.mm(n.reciprocal_(), self.P).mul_(z).mul_(c.lam)
        if c.l1 > 0:
            terms["l1"] = c.l1 * z.abs().sum() / B
            dz.add_(torch.sign(z), alpha=c.l1)
        dz.addmm_(r, D.T, alpha=-1.0)
        dD = torch.mm(z.T, r).mul_(-1.0 / B)
        dg = (dz * s).sum(0).div_(B)
        ds = dz.mul_(g)  # B·∂/∂s
        sign_s = torch.sign(s)
        db = (ds * sign_s).sum(0).mul_(torch.sign(b)).div_(-B)
        du = ds.mul_(sign_s.abs_())  # B·∂/∂u: shrink passes the gradient where s ≠ 0
        dM = torch.mm(du.T, x).div_(B)
        terms["loss"] = sum(terms.values())
        return terms, (dM, dD, db, dg)

    def revive_silent(self, x: torch.Tensor, dead: torch.Tensor, optimizer: Optimizer) -> None:
        """The units whose F(x) was 0 on every patch since the last check (`revive`)."""
        self.revive(x, dead, optimizer)

    @torch.no_grad()
    def revive(self, x: torch.Tensor, dead: torch.Tensor,
               optimizer: Optimizer | None = None) -> torch.Tensor:
        """Start the units marked in `dead` (K,) bool again, from the patches of x: (B, P) that
        the model reconstructs worst: each gets a residual r = x − F(x)D, drawn with probability
        ∝ ‖r‖², as its decoder atom (unit norm) and its encoder filter (scaled to the median
        live filter's norm), and the median live threshold and gain. Their optimiser state is
        cleared. Other units are left exactly as they were. Returns the revived indices."""
        idx = dead.nonzero().squeeze(1)
        n = idx.numel()
        if n == 0:
            return idx
        live = ~dead
        if not bool(live.any()):
            live = torch.ones_like(dead)
        r = x - self.predict(x) @ self.D
        weight = (r * r).sum(1)
        if not bool(weight.sum() > 0):
            r, weight = x, (x * x).sum(1) + 1e-12
        pick = torch.multinomial(weight, n, replacement=n > x.shape[0])
        atoms = r[pick]
        if self.mask is not None:  # the residual inside each revived unit's own aperture
            atoms = self._masked(atoms, idx)
        atoms = atoms / atoms.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.D[idx] = atoms
        self.M[idx] = atoms * self.M[live].norm(dim=1).median()
        self.b[idx] = self.b[live].abs().median()
        self.gain[idx] = self.gain[live].median()
        clear_optimizer_state(optimizer, [(p, idx) for p in (self.M, self.D, self.b, self.gain)])
        return idx

    def _masked(self, W: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """W: (K, P) (or the rows `idx`) kept inside each unit's aperture, zero mean there when
        `zero_mean`. A new tensor."""
        ap = self.mask if idx is None else self.mask[idx]
        W = W * ap
        if self.config.zero_mean:
            W = W - ap * (W.sum(dim=1, keepdim=True) / ap.sum(dim=1, keepdim=True).clamp_min(1))
        return W

    @torch.no_grad()
    def constrain(self) -> None:
        if self.mask is not None:
            self.M.copy_(self._masked(self.M))
            self.D.copy_(self._masked(self.D))
        self.D.div_(self.D.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        self.check_filter_kind(kind)
        return self.filters_of(self.D if kind == "decoder" else self.M)


def aperture_centres(config: TopographicConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's aperture centre in patch pixels (row, col), both (K,) in map order: unit
    (r, c) of a rows×cols map over an h×w patch sits at ((r + ½)·h/rows − ½, (c + ½)·w/cols − ½)."""
    rows, cols = config.group.map_shape
    h, w = config.input_shape
    cy = (torch.arange(rows, dtype=torch.float64) + 0.5) * h / rows - 0.5
    cx = (torch.arange(cols, dtype=torch.float64) + 0.5) * w / cols - 0.5
    return cy.repeat_interleave(cols), cx.repeat(rows)


def aperture_masks(config: TopographicConfig):
    """(K, h·w) float32 0/1: the pixels within `aperture` of each unit's centre."""
    h, w = config.input_shape
    cy, cx = aperture_centres(config)
    ys = torch.arange(h, dtype=torch.float64).repeat_interleave(w)
    xs = torch.arange(w, dtype=torch.float64).repeat(h)
    d2 = (ys[None] - cy[:, None]) ** 2 + (xs[None] - cx[:, None]) ** 2
    return (d2 <= config.aperture ** 2).to(torch.float32).numpy()
