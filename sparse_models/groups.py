"""Group (pool) structures over the code units, for group-sparsity penalties.

A structure turns into a dense pool matrix `P: (n_pools, n_units)` with non-negative weights;
the group-sparsity penalty of a code `z: (B, n_units)` is `Σ_j sqrt(Σ_i P[j, i] z_i² + eps)`
(Kavukcuoglu et al. 2009; Hyvärinen & Hoyer 2001).

Kinds:
- `blocks`: non-overlapping `size × size` blocks tiling a 2-D map (use map_shape=(1, N) for 1-D).
- `neighbourhood`: overlapping `size × size` windows on a 2-D map every `stride` units, wrapping
  around (a torus) when `wrap`, with Gaussian weights of width `sigma` (in map units) when given.
  Without wrap the windows hang over the map's edges (the part outside is empty), so that a unit
  on the edge lies in as many windows, with the same weights, as one in the middle. Windows kept
  inside the map would put edge units in fewer pools: activity there would cost less, and the
  edge units would take over while the middle of the map died (measured: 67 % of a 16×16 map's
  units never fired).
- `list`: an explicit list of groups of unit indices (e.g. every subtree of a tree).
- `tree`: pools on `n_trees` complete trees of `depth` levels and `branching` children per
  inner unit (`trees.make_tree`; the units lie on a 1 × N strip, N the forest's size), chosen by
  `pools`: `subtrees` (one per unit: the unit and everything below it), `depth` (the subtrees
  rooted at tree level `level`, each shallower unit a pool of its own) or `paths` (every
  root-to-leaf path). The lecture's question "should we use all possible subtrees as groups?"
  is left to the user, as is using several trees.
- `none`: every unit its own group, i.e. plain L1 on |z|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from . import trees
from .config import check, check_ranges, setting

GroupKind = Literal["none", "blocks", "neighbourhood", "list", "tree"]
TreePools = Literal["subtrees", "depth", "paths"]
KINDS = ("none", "blocks", "neighbourhood", "list", "tree")
MAX_UNITS = 4096  # units on one map: e.g. 64×64 (a dense pool matrix of at most 64 MB)
_TREE = {"kind": "tree"}


@dataclass(frozen=True)
class GroupSpec:
    kind: GroupKind = "neighbourhood"
    # rows, cols of the unit map; rows*cols = n_units
    map_shape: tuple[int, int] = setting((16, 16), label="Map shape", shape=True)
    size: int = 3  # block side, or neighbourhood side k (k×k window)
    stride: int = 1  # distance between neighbourhood centres (neighbourhood only)
    wrap: bool = True  # neighbourhoods wrap around the map edges (torus)
    sigma: float | None = None  # Gaussian weight width in map units; None = uniform weights
    groups: tuple[tuple[int, ...], ...] = ()  # explicit groups of unit indices (kind 'list')
    # kind 'tree' only; the defaults are never read by the other kinds, so configs written
    # before these fields existed load as they were.
    depth: int = setting(3, label="Tree depth (levels)", min=1, max=12, when=_TREE, shape=True,
                         help="Levels of each tree: 1 is the roots alone.")
    branching: int = setting(4, label="Branching", min=1, max=64, when=_TREE, shape=True,
                             help="Children of every unit above the leaves.")
    n_trees: int = setting(1, label="Number of trees", min=1, max=256, when=_TREE, shape=True,
                           help="Trees side by side; no pool spans two trees.")
    pools: TreePools = setting(
        "subtrees", label="Tree pools", when=_TREE,
        help="subtrees: one pool per unit, the unit and all below it; depth: the subtrees "
             "rooted at one level (shallower units each a pool of their own); paths: every "
             "root-to-leaf path.")
    level: int = setting(1, label="Subtree level", min=0, max=11,
                         when={"kind": "tree", "pools": "depth"},
                         help="The level the pools' subtrees are rooted at: 0 = whole trees.")

    def __post_init__(self) -> None:
        check(self.kind in KINDS,
              f"group kind must be none, blocks, neighbourhood, list or tree; got {self.kind!r}")
        check(len(self.map_shape) == 2 and all(int(s) >= 1 for s in self.map_shape),
              f"map_shape must be two positive integers, got {self.map_shape!r}")
        rows, cols = self.map_shape
        check(rows * cols <= MAX_UNITS,
              f"a {rows}×{cols} map has {rows * cols} units; the limit is {MAX_UNITS} (its "
              f"dense pool matrix grows as the square of the units)")
        check(isinstance(self.size, int) and self.size >= 1,
              f"group size must be a positive integer, got {self.size!r}")
        check(isinstance(self.stride, int) and self.stride >= 1,
              f"stride must be a positive integer, got {self.stride!r}")
        check(self.sigma is None or self.sigma > 0, f"sigma must be positive, got {self.sigma}")
        if self.kind == "blocks":
            check(rows % self.size == 0 and cols % self.size == 0 or
                  (rows == 1 and cols % self.size == 0),
                  f"{self.size}×{self.size} blocks do not tile a {rows}×{cols} map: "
                  f"map sides must be multiples of the block size")
        if self.kind == "neighbourhood":
            check(self.size <= rows and self.size <= cols,
                  f"neighbourhood {self.size}×{self.size} is larger than the {rows}×{cols} map")
            check(self.stride <= self.size,
                  f"stride {self.stride} is larger than the neighbourhood size {self.size}: "
                  f"some units would be in no pool")
        if self.kind == "list":
            check(len(self.groups) > 0, "kind 'list' needs at least one group")
            n = self.n_units
            for g in self.groups:
                check(len(g) > 0, "groups must not be empty")
                check(all(0 <= int(i) < n for i in g),
                      f"group {list(g)} names a unit outside 0..{n - 1}")
            covered = {int(i) for g in self.groups for i in g}
            check(len(covered) == n,
                  f"{n - len(covered)} unit(s) are in no group; every unit needs a group")
        if self.kind == "tree":
            self._check_tree()

    def _check_tree(self) -> None:
        n = trees.check_tree_shape(self.depth, self.branching, self.n_trees,
                                   why_limit="the pool matrix is dense, pools × units")
        check(self.pools in ("subtrees", "depth", "paths"),
              f"tree pools must be subtrees, depth or paths; got {self.pools!r}")
        if self.pools == "depth":
            check(isinstance(self.level, int) and 0 <= self.level < self.depth,
                  f"subtree level must be between 0 (whole trees) and {self.depth - 1} (the "
                  f"leaves of a tree of depth {self.depth}); got {self.level!r}")
        check_ranges(self)
        check(tuple(self.map_shape) == (1, n),
              f"{self.n_trees} tree(s) of depth {self.depth} and branching {self.branching} "
              f"have {n} units, so map_shape must be [1, {n}] (the units in a row); got "
              f"{list(self.map_shape)}")

    def tree(self) -> trees.Tree:
        """The forest of kind 'tree' (ConfigError for other kinds)."""
        check(self.kind == "tree", f"a group structure of kind {self.kind!r} has no tree")
        return trees.make_tree(self.depth, self.branching, self.n_trees)

    def tree_groups(self) -> tuple[tuple[int, ...], ...]:
        """Kind 'tree': the pools as groups of unit indices (`trees.subtree_groups`,
        `depth_groups` or `path_groups`)."""
        t = self.tree()
        if self.pools == "subtrees":
            return trees.subtree_groups(t)
        if self.pools == "depth":
            return trees.depth_groups(t, self.level)
        return trees.path_groups(t)

    @property
    def n_units(self) -> int:
        return int(self.map_shape[0] * self.map_shape[1])

    def pool_matrix(self) -> np.ndarray:
        """Pool weights `(n_pools, n_units)`, float32: 1 per member for uniform pools,
        a Gaussian peaking at 1 in the window centre when `sigma` is set."""
        rows, cols = self.map_shape
        n = self.n_units
        if self.kind == "none":
            return np.eye(n, dtype=np.float32)
        if self.kind in ("list", "tree"):
            groups = self.groups if self.kind == "list" else self.tree_groups()
            P = np.zeros((len(groups), n), dtype=np.float32)
            for j, g in enumerate(groups):
                P[j, list(g)] = 1.0
            return P
        if self.kind == "blocks":
            k = self.size
            kr = 1 if rows == 1 else k
            P = []
            for r0 in range(0, rows, kr):
                for c0 in range(0, cols, k):
                    m = np.zeros((rows, cols), dtype=np.float32)
                    m[r0:r0 + kr, c0:c0 + k] = 1.0
                    P.append(m.ravel())
            return np.stack(P)
        # neighbourhood: a k×k window's weights are the outer product of two k-windows, so the
        # pools are the Kronecker product of the 1-D windows along the rows and the columns
        k, s = self.size, self.stride
        return np.kron(window_matrix(rows, k, s, self.wrap, self.sigma),
                       window_matrix(cols, k, s, self.wrap, self.sigma)).astype(np.float32)

    def pool_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.from_numpy(self.pool_matrix()).to(device)

    def describe(self) -> str:
        """A one-line human description, e.g. '256 pools of 3×3, stride 1, torus, σ=1.0'."""
        P = self.pool_matrix()
        if self.kind == "none":
            return f"no groups: plain L1 on {self.n_units} units"
        if self.kind == "list":
            return f"{P.shape[0]} explicit groups over {self.n_units} units"
        if self.kind == "tree":
            return f"{P.shape[0]} {self._tree_pool_words()} on {self._forest_words()}"
        if self.kind == "blocks":
            return f"{P.shape[0]} non-overlapping {self.size}×{self.size} blocks"
        extras = ["torus" if self.wrap else "no wrap"]
        if self.sigma is not None:
            extras.append(f"Gaussian σ={self.sigma:g}")
        return (f"{P.shape[0]} pools of {self.size}×{self.size}, stride {self.stride} "
                f"(overlap {self.size - self.stride}), " + ", ".join(extras))


    def _forest_words(self) -> str:
        trees_ = f"{self.n_trees} trees" if self.n_trees > 1 else "1 tree"
        return (f"{trees_} of depth {self.depth}, branching {self.branching} "
                f"({self.n_units} units)")

    def _tree_pool_words(self) -> str:
        if self.pools == "subtrees":
            return "subtree pools (one per unit)"
        if self.pools == "paths":
            return "root-to-leaf path pools"
        shallow = self.n_trees * trees.tree_size(self.level, self.branching)
        return (f"pools (the subtrees rooted at level {self.level}"
                + (f"; {shallow} shallower unit(s) alone)" if shallow else ")"))


def window_matrix(n: int, k: int, s: int, wrap: bool, sigma: float | None) -> np.ndarray:
    """(J, n) float64: row j holds the j-th k-wide window's weights over a side of n units, the
    windows every s from `window_starts`: ones, or a Gaussian of width `sigma` peaking at 1 in
    the window's centre. Round a torus a window wider than the side adds onto itself; without
    wrap the part hanging over the edges is dropped."""
    offs = np.arange(k) - (k - 1) / 2.0  # offsets from the window centre
    w1 = np.ones(k) if sigma is None else np.exp(-offs**2 / (2 * sigma**2))
    starts = window_starts(n, k, s, wrap)
    A = np.zeros((len(starts), n), dtype=np.float64)
    for j, r0 in enumerate(starts):
        idx = np.arange(r0, r0 + k)
        if wrap:
            np.add.at(A[j], idx % n, w1)
        else:
            inside = (idx >= 0) & (idx < n)
            A[j, idx[inside]] = w1[inside]
    return A


def window_starts(n: int, k: int, s: int, wrap: bool) -> list[int]:
    """First index of each k-wide window along a side of n units, every s: from 0 round a torus;
    without wrap from −(k−1), so that the windows hang over both edges alike (see the module
    docstring) and every unit is in ⌈k/s⌉ or ⌊k/s⌋ of them."""
    if wrap:
        return list(range(0, n, s))
    return list(range(-(k - 1), n, s))


def pool_overlay(spec: GroupSpec, pool_index: int | None = None) -> np.ndarray:
    """An image `(rows, cols)` for previewing pools on the map.

    With `pool_index`, that pool's weights; without it, how many pools cover each unit
    (coverage), which shows overlap and wrap-around at a glance.
    """
    P = spec.pool_matrix()
    rows, cols = spec.map_shape
    if pool_index is not None:
        if not 0 <= pool_index < P.shape[0]:
            raise IndexError(f"pool {pool_index} out of range 0..{P.shape[0] - 1}")
        return P[pool_index].reshape(rows, cols)
    return (P > 0).sum(0).reshape(rows, cols).astype(np.float32)


def square_map_shape(n_units: int) -> tuple[int, int]:
    """The most square (rows, cols) with rows*cols = n_units."""
    r = int(math.isqrt(n_units))
    while n_units % r:
        r -= 1
    return (r, n_units // r)
