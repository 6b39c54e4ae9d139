"""Sparse coding with lateral inhibition (Gregor, Szlam & LeCun, NIPS 2011, "Structured sparse
coding via lateral inhibition").

Energy, per sample (x: (P,), z: (N,), D: (N, P) decoder atoms as rows, the paper's W = Dᵀ):

    E(x, z) = ½‖x − zD‖² + λ‖z‖₁ + |z|ᵀ S |z|

S: (N, N) symmetric, non-negative, zero on the diagonal: a large S_ij means units i and j should
not be active together. S lives on an allowed pattern (`structure`):
- `all`:   every pair of units, S_ij = `s_scale`;
- `local`: units on a 2-D map; no inhibition within `radius` map units (Euclidean, round a torus
           when `wrap`), `s_scale` beyond: neighbours may fire together, distant units not, which
           also orders the features on the map;
- `tree`:  a forest of `n_trees` trees of `depth` levels and `branching` (`sparse_models.trees`);
           S_ij = `s_scale` unless i is an ancestor or descendant of j, so the units that fire
           together lie along one root-to-leaf path.

Inference: z* = argmin_z E(x, z) per row of a batch, by a monotone proximal-gradient scheme
(`inhibition.lateral_solve`, where the scheme is derived): FISTA-like steps kept only where the
energy does not rise, so every row's energy is non-increasing; with S = 0, the lasso's codes.

Learning: one gradient step on D at z* (½‖x − z*D‖²), then unit-length atoms (`constrain`);
with `learn_s`, one gradient-ascent step on S (∂E/∂S = mean |z*|ᵀ|z*|: S grows where two units
fire together) projected back onto: symmetric, ≥ 0, zero on the diagonal and outside its
pattern, ≤ `s_max`. S stops growing once it keeps those units from firing together.

Options for the tree: `init=branch` grows the tree by copying (each child starts as its parent's
atom plus noise of size `init_noise`), and `lam_depth` gives a unit at depth d the sparsity
weight λ·lam_depth^d (above 1: deeper units more selective).

Defaults (the `preset`): 4 trees of depth 3 and branching 4 (84 units), S fixed at 0.5, trained
300 steps on scikit-learn's 8×8 digits with λ = 0.05. On digits the tree gives what the lecture
shows: active units along one path (path share 98 %) and children that are variants of their
parent (mean |cos| of parent–child atoms 1.41–1.45 × that of all pairs over two seeds; 0.94 ×
with S = 0). On whitened natural patches the path share is as high (97 %), but a parent and its
child, the only pairs allowed to fire together, learn complementary parts of an input (ratio
0.81). Learning S, λ per level and unwhitened patches left them less alike than random pairs
(0.70–0.95); only a tree grown by copying at a lower rate came out more alike (1.17), with a lower
explained variance (one seed each). A local S orders a map only weakly (`LOCAL_MAP`: Δθ 33.6° against
44.9° shuffled). The README's "Trees: lateral inhibition" gives the figures and commands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from .. import trees
from ..config import ConfigError, check, check_ranges, setting
from .base import Layout, PatchModel, register
from .inhibition import l1_term, lateral_energy, lateral_solve, rowdot, s_ascent_step

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..training.optim import Optimizer

Structure = Literal["tree", "local", "all"]
Init = Literal["random", "branch"]

# An orientation map from a local S (the module docstring says how ordered it is): the `--set`
# overrides of `python -m sparse_models train lateral` over the preset, which stays the tree on
# digits (`bench tree` trains it). About 2 minutes on one CPU thread.
LOCAL_MAP: tuple[str, ...] = (
    "model.structure=local", "model.map_shape=[12,12]", "model.radius=2", "model.lam=0.2",
    "model.s_scale=2", "model.n_iter=20", "data.source=natural", "data.patch_size=8",
    "train.steps=1000", "train.lr=0.003", "train.snapshot_every=250")


@dataclass(frozen=True)
class LateralConfig:
    input_shape: tuple[int, int] = setting((12, 12), label="Input (h, w)", form=False)  # from the data
    structure: Structure = setting(
        "tree", label="Structure of S", shape=True,
        help="Which pairs of units may inhibit each other. tree: all pairs except a unit and "
             "its ancestors or descendants (active units then lie along one branch); local: "
             "units on a 2-D map, no inhibition within a radius, inhibition beyond; all: every "
             "pair.")
    depth: int = setting(3, label="Tree depth (levels)", min=1, max=12, shape=True,
                         when={"structure": "tree"},
                         help="Levels of each tree: 1 is the roots alone.")
    branching: int = setting(4, label="Branching factor", min=1, max=64, shape=True,
                             when={"structure": "tree"},
                             help="Children of every unit above the leaves.")
    n_trees: int = setting(4, label="Number of trees", min=1, max=256, shape=True,
                           when={"structure": "tree"},
                           help="Trees side by side; units of different trees always inhibit "
                                "each other.")
    # An explicit forest (e.g. after pruning): parents[i] = unit i's parent, −1 for a root;
    # when set it replaces depth × branching × n_trees.
    parents: tuple[int, ...] = setting((), label="Tree (parents)", form=False, url=False,
                                       shape=True)
    map_shape: tuple[int, int] = setting((8, 8), label="Map shape (rows, cols)", shape=True,
                                         when={"structure": "local"},
                                         help="The 2-D map the units sit on.")
    radius: float = setting(1.5, label="Neighbourhood radius (map units)", min=0.0, max=64.0,
                            when={"structure": "local"},
                            help="Units closer than this on the map do not inhibit each other; "
                                 "units farther apart do.")
    wrap: bool = setting(True, label="Map wraps around (torus)", when={"structure": "local"})
    n_units: int = setting(64, label="Number of units", min=1, max=trees.MAX_UNITS, shape=True,
                           when={"structure": "all"}, help="Dictionary size.")
    lam: float = setting(0.5, label="λ (sparsity weight)", min=0.0, max=100.0,
                         help="Weight of the L1 penalty, in the units of the data (whitened "
                              "12×12 patches: about 0.5; the digits, the default data of this "
                              "model: about 0.05, its preset).")
    s_scale: float = setting(0.5, label="S scale", min=0.0, max=100.0,
                             help="Inhibition S_ij of every allowed pair at the start (and for "
                                  "good when S is not learned).")
    learn_s: bool = setting(False, label="Learn S",
                            help="After each step on D, one gradient-ascent step on S: S grows "
                                 "where two allowed units fire together, up to the bound.")
    s_lr: float = setting(0.05, label="S learning rate", min=0.0, max=100.0,
                          when={"learn_s": True},
                          help="Step of the ascent on S (per unit of mean |zᵢ||zⱼ|).")
    s_max: float = setting(2.0, label="S bound", min=0.0, max=1000.0,
                           help="S_ij is kept at or below this (the ascent would grow it "
                                "without end).")
    init: Init = setting(
        "random", label="Initial atoms", when={"structure": "tree"},
        help="random: every atom a random unit vector. branch: the roots random, every other "
             "unit's atom its parent's plus noise of relative size `init_noise` (a tree grown "
             "by copying: children start as variants of their parent).")
    init_noise: float = setting(0.5, label="Branch noise", min=0.0, max=100.0,
                                when={"init": "branch"},
                                help="With init=branch: the size of the random vector added to "
                                     "the parent's unit-length atom, before normalising.")
    lam_depth: float = setting(1.0, label="λ factor per level", min=0.01, max=100.0,
                               when={"structure": "tree"},
                               help="A unit at depth d (0: a root) has sparsity weight "
                                    "λ·factor^d: above 1, deeper units are more selective.")
    n_iter: int = setting(50, label="Inference iterations", min=1, max=10_000,
                          help="Iterations of the monotone proximal-gradient inference per "
                               "batch.")
    seed: int = setting(0, label="Model seed (initial weights)", min=0, max=2**31 - 1)

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 2 and min(int(v) for v in self.input_shape) >= 1,
              f"input_shape must be two positive integers, got {self.input_shape!r}")
        check(self.structure in ("tree", "local", "all"),
              f"structure must be tree, local or all; got {self.structure!r}")
        check_ranges(self, "model.")
        check(self.s_scale <= self.s_max,
              f"the S scale ({self.s_scale:g}) is above the S bound s_max ({self.s_max:g}): "
              f"raise s_max or lower s_scale")
        check(self.init in ("random", "branch"),
              f"init must be random or branch; got {self.init!r}")
        if self.structure == "tree":
            self.tree()  # ConfigError in words for a forest that is too large or malformed
        else:
            check(self.init == "random",
                  f"init=branch copies parents' atoms to their children: it needs "
                  f"structure=tree, not {self.structure!r}")
            check(self.lam_depth == 1.0,
                  f"lam_depth sets λ per tree level: it needs structure=tree, not "
                  f"{self.structure!r}")
        if self.structure == "local":
            check(len(self.map_shape) == 2 and min(int(v) for v in self.map_shape) >= 1,
                  f"map_shape must be two positive integers, got {self.map_shape!r}")
            rows, cols = (int(v) for v in self.map_shape)
            check(rows * cols <= trees.MAX_UNITS,
                  f"a {rows}×{cols} map has {rows * cols} units, above the limit of "
                  f"{trees.MAX_UNITS} (S is a dense units × units matrix)")

    def tree(self) -> trees.Tree:
        """The forest of a tree structure: `parents` when set, else the complete trees."""
        if self.parents:
            return trees.Tree(tuple(self.parents))
        return trees.make_tree(self.depth, self.branching, self.n_trees)

    @property
    def units(self) -> int:
        if self.structure == "tree":
            return len(self.parents) if self.parents else trees.check_tree_shape(
                self.depth, self.branching, self.n_trees)
        if self.structure == "local":
            return int(self.map_shape[0]) * int(self.map_shape[1])
        return self.n_units


def local_pattern(map_shape: tuple[int, int], radius: float, wrap: bool) -> np.ndarray:
    """(N, N) bool on a rows×cols map (unit i at (i // cols, i % cols)): True where the two units
    are farther apart than `radius` (Euclidean, round a torus when `wrap`)."""
    rows, cols = (int(v) for v in map_shape)
    r, c = np.divmod(np.arange(rows * cols), cols)
    dr = np.abs(r[:, None] - r[None, :])
    dc = np.abs(c[:, None] - c[None, :])
    if wrap:
        dr, dc = np.minimum(dr, rows - dr), np.minimum(dc, cols - dc)
    return dr * dr + dc * dc > radius * radius


def allowed_pattern(config: LateralConfig) -> np.ndarray:
    """(N, N) bool: where S may be positive (never on the diagonal)."""
    if config.structure == "tree":
        return trees.inhibition_pattern(config.tree())
    if config.structure == "local":
        p = local_pattern(config.map_shape, config.radius, config.wrap)
    else:
        p = np.ones((config.units, config.units), dtype=bool)
    np.fill_diagonal(p, False)
    return p


# --- the model -----------------------------------------------------------------------------------

@register
class Lateral(PatchModel):
    name = "lateral"
    Config = LateralConfig
    description = ("Sparse coding with lateral inhibition |z|ᵀS|z|: S on a tree (active units "
                   "along one branch), on a 2-D map, or on all pairs.")
    blurb = ("Units inhibit each other through a symmetric non-negative matrix S (Gregor, Szlam "
             "& LeCun 2011): two units with a large S_ij are not active together. When S "
             "follows a **tree** (every unit inhibits all others except its ancestors and "
             "descendants), the units active on an input lie along one root-to-leaf path: the "
             "converse of group sparsity. Along a branch the same feature grows more selective; "
             "neighbouring branches hold similar features. S can be set by hand or learned by "
             "gradient ascent, and rarely used branches can be pruned.")
    energy_latex = (r"E(x,z)=\tfrac12\lVert x-zD\rVert^2+\lambda\lVert z\rVert_1+|z|^\top S\,|z|,"
                    r"\quad z^*=\arg\min_z E")
    paper = ("Gregor, Szlam & LeCun, NIPS 2011 (structured sparse coding via lateral "
             "inhibition)")
    # digits, not natural patches: there the tree's children become variants of their parent
    # (see the module docstring for the figures on both). One thread: the solver's many small
    # matmuls ran 16× slower on two threads than on one on a busy 2-core machine (269 s against
    # 17 s for the default run, `bench tree`).
    preset = {"model": {"lam": 0.05}, "data": {"source": "digits"},
              "train": {"steps": 300, "batch_size": 256, "lr": 1e-2, "eval_every": 0,
                        "threads": 1}}
    tiny = {"model.depth": 2, "model.branching": 3, "model.n_trees": 2, "model.n_iter": 10,
            "data.source": "gratings", "data.patch_size": 6, "data.n_patches": 128,
            "train.steps": 4, "train.batch_size": 32, "train.log_every": 2,
            "train.snapshot_every": 2}

    def __init__(self, config: LateralConfig) -> None:
        super().__init__(config)
        h, w = config.input_shape
        N = config.units
        g = torch.Generator().manual_seed(config.seed)
        D = torch.randn(N, h * w, generator=g)
        D = D / D.norm(dim=1, keepdim=True)
        self._tree = config.tree() if config.structure == "tree" else None
        if config.init == "branch":
            # a tree grown by copying: each child its parent's atom plus noise (parents come
            # before their children, so a parent's atom is final when its children copy it)
            noise = torch.randn(N, h * w, generator=g)
            noise = config.init_noise * noise / noise.norm(dim=1, keepdim=True)
            for i, q in enumerate(self._tree.parents):
                if q >= 0:
                    d = D[q] + noise[i]
                    D[i] = d / d.norm().clamp_min(1e-12)
        self.D = nn.Parameter(D)  # (N, P) atoms as rows
        pattern = torch.from_numpy(allowed_pattern(config))
        self.register_buffer("pattern", pattern, persistent=False)  # (N, N) bool
        self.register_buffer("S", config.s_scale * pattern.to(torch.float32))  # (N, N)
        if self._tree is not None and config.lam_depth != 1.0:
            depths = torch.from_numpy(self._tree.depths).to(torch.float32)
            self.register_buffer("lam_units", config.lam * config.lam_depth ** depths,
                                 persistent=False)  # (N,) λ per unit
        self._last_codes: torch.Tensor | None = None

    # --- what it declares ---------------------------------------------------------------------
    @property
    def n_units(self) -> int:
        return self.D.shape[0]

    @property
    def lam(self) -> float | torch.Tensor:
        """The sparsity weight: a number, or (N,) one per unit when λ changes with depth."""
        return self.lam_units if "lam_units" in self._buffers else float(self.config.lam)

    @property
    def tree(self) -> trees.Tree | None:
        """The forest of a tree-structured model, else None."""
        return self._tree

    @property
    def layout(self) -> Layout:
        c = self.config
        if c.structure == "tree":
            return Layout("tree", parents=self._tree.parents)
        if c.structure == "local":
            return Layout("map", tuple(int(v) for v in c.map_shape), wrap=c.wrap)
        return Layout("none")

    @property
    def map_order(self) -> str:
        """In words, for the pages: what, if anything, puts the units in order on a map. This
        model has no pools, so pages that treat a model without pools as salt and pepper ask
        it (a map of a local S is ordered by the inhibition alone)."""
        c = self.config
        if c.structure == "local":
            rows, cols = c.map_shape
            s = "learned, starting" if c.learn_s else "fixed"
            return (f"It has no pools: its units sit on a {rows}×{cols} map"
                    f"{' (a torus)' if c.wrap else ''}, and only lateral inhibition can order "
                    f"them. Units closer than {c.radius:g} map units may fire together; units "
                    f"farther apart inhibit each other (S {s} at {c.s_scale:g}), so the units "
                    f"that fire on the same patches have to be neighbours on the map.")
        how = (f"`python -m sparse_models train lateral {' '.join('--set ' + s for s in LOCAL_MAP)}`"
               " gives a lateral model whose units lie on a 2-D map (structure=local).")
        if c.structure == "tree":
            return "Its features are drawn on the Tree page. " + how
        return ("Every pair of its units inhibits each other, so they are in no particular "
                "order. " + how)

    @classmethod
    def summarize_config(cls, config: LateralConfig) -> str:
        s = f"S {'learned' if config.learn_s else 'fixed'} at {config.s_scale:g}"
        if config.structure == "tree":
            if config.parents:
                where = f"pruned forest ({config.tree().describe()})"
            else:
                n = config.n_trees
                where = (f"{n} tree{'s' if n > 1 else ''} of depth {config.depth}, branching "
                         f"{config.branching} ({config.units} units)")
        elif config.structure == "local":
            rows, cols = config.map_shape
            where = f"{rows}×{cols} map, free within radius {config.radius:g}"
        else:
            where = f"{config.units} units, all pairs"
        lam = f"λ={config.lam:g}"
        if config.structure == "tree" and config.lam_depth != 1.0:
            lam += f"×{config.lam_depth:g}^depth"
        if config.structure == "tree" and config.init == "branch":
            where += f", children grown from their parents (noise {config.init_noise:g})"
        return f"{where}, {s}, {lam}"

    def filter_kinds(self) -> tuple[str, ...]:
        return ("decoder",)

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        self.check_filter_kind(kind)
        return self.filters_of(self.D)

    def extra_state_for_ui(self) -> dict[str, Any]:
        out: dict[str, Any] = {"S": self.S.detach().cpu().numpy(),
                               "pattern": self.pattern.cpu().numpy()}
        if self._tree is not None:
            out["parents"] = np.asarray(self._tree.parents)
        return out

    # --- inference and learning ---------------------------------------------------------------
    def infer(self, x: torch.Tensor, z0: torch.Tensor | None = None, n_iter: int | None = None,
              record: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z* = argmin E(x, ·) from z0 (zeros when None; pass earlier codes to warm-start), and
        with `record` the energies per iteration (see `lateral_solve`)."""
        c = self.config
        return lateral_solve(x, self.D.detach(), self.S, self.lam,
                             c.n_iter if n_iter is None else n_iter, z0=z0, record=record)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.infer(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.D

    def energy(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E(x, z) per row (B,)."""
        return lateral_energy(x, self.D.detach(), self.S, z, self.lam)

    def _terms(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        r = x - self.decode(z)
        a = z.abs()
        terms = {"reconstruction": 0.5 * (r * r).sum(-1).mean(),
                 "sparsity": l1_term(a, self.lam).mean(),
                 "inhibition": rowdot(a @ self.S, a).mean()}
        terms["loss"] = terms["reconstruction"] + terms["sparsity"] + terms["inhibition"]
        return terms

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The energy terms at z* (only the reconstruction depends on D once z* is fixed)."""
        return self._terms(x, self.encode(x))

    def gradients(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """∂/∂D of ½‖x − z*D‖² (mean over the batch), by hand: −z*ᵀr / B."""
        with torch.no_grad():
            z = self.encode(x)
            r = x - z @ self.D
            self.D.grad = -(z.T @ r) / x.shape[0]
            self._last_codes = z
            return self._terms(x, z)

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None,
                   optimizer: Optimizer) -> dict[str, torch.Tensor]:
        """The base step on D (then unit-norm atoms); with `learn_s`, one projected ascent step
        on S at the same codes."""
        terms = super().train_step(x, y, optimizer)
        if self.config.learn_s and self._last_codes is not None:
            with torch.no_grad():
                self.S.copy_(s_ascent_step(self.S, self._last_codes, self.config.s_lr,
                                           self.pattern, self.config.s_max))
        self._last_codes = None
        return terms

    @torch.no_grad()
    def constrain(self) -> None:
        self.D.div_(self.D.norm(dim=1, keepdim=True).clamp_min(1e-12))

    # --- tree statistics ----------------------------------------------------------------------
    def tree_measures(self, codes: torch.Tensor) -> dict[str, Any]:
        """Statistics of codes (B, N) on the model's tree (`trees.tree_statistics`: unit and
        branch usage, path share, parent–child filter similarity), plus for every structure
        `clash_share`: the share of inputs on which two units with S_ij > 0 are both active.
        Without a tree, only `clash_share` and `unit_usage`."""
        a = (codes.detach().abs() > 0).to(torch.float32).cpu()
        inhibit = (self.S.detach().cpu() > 0).to(torch.float32)
        clash = float((((a @ inhibit) * a).sum(1) > 0).float().mean()) if a.shape[0] else 0.0
        if self._tree is None:
            return {"clash_share": clash, "unit_usage": trees.unit_usage(codes)}
        out = trees.tree_statistics(self._tree, codes, self.filters())
        out["clash_share"] = clash
        return out

    @torch.no_grad()
    def branch_usage(self, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
        """(N,) share of the inputs x: (B, P) on which any unit of each unit's subtree is
        active, from the inferred codes (what `prune` takes)."""
        if self._tree is None:
            raise ConfigError("branch usage needs a tree-structured model (structure=tree)")
        codes = torch.cat([self.encode(x[s:s + batch_size])
                           for s in range(0, x.shape[0], batch_size)])
        return trees.branch_usage(self._tree, codes)


def prune(model: Lateral, usage: np.ndarray | torch.Tensor, threshold: float) -> Lateral:
    """A new model of the same class without the branches (subtrees) whose `usage` is below
    `threshold`, keeping the other units' atoms and S, with the tree's parents re-indexed (the
    config's `parents`), so training can go on from it.

    usage: (N,) per unit, normally `branch_usage` (the share of inputs on which any unit of the
    subtree is active); a unit below the threshold is removed with its whole subtree."""
    if model.tree is None:
        raise ConfigError(f"pruning needs a tree-structured model; this one's S is "
                          f"{model.config.structure!r}")
    u = np.asarray(usage.detach().cpu() if isinstance(usage, torch.Tensor) else usage,
                   dtype=np.float64)
    check(u.shape == (model.n_units,),
          f"usage must give one number per unit ({model.n_units}), got shape {u.shape}")
    check(bool(np.isfinite(threshold)) and 0.0 <= threshold <= 1.0,
          f"the prune threshold is a share of inputs, between 0 and 1; got {threshold}")
    remove = u < threshold
    try:
        new_tree, kept = trees.prune_tree(model.tree, remove)
    except ConfigError:
        raise ConfigError(
            f"a prune threshold of {threshold:g} removes every branch (the most used branch is "
            f"used on {u.max():.3g} of the inputs); lower the threshold") from None
    config = replace(model.config, parents=new_tree.parents)
    new = type(model)(config).to(model.D.device)
    idx = torch.as_tensor(kept, device=model.D.device)
    with torch.no_grad():
        new.D.copy_(model.D[idx])
        new.S.copy_(model.S[idx][:, idx])
    return new
