"""Trees (and forests) of code units, for tree-structured lateral inhibition and tree groups.

A forest is given by `parents`: `parents[i]` is unit i's parent, −1 for a root, and every
parent comes before its children (`parents[i] < i`). `make_tree(depth, branching, n_trees)`
builds `n_trees` complete trees side by side, each a contiguous block of units numbered in
breadth-first order (root, its children, their children, …); `depth` counts levels, so a tree
of depth d and branching b has 1 + b + … + b^(d−1) units.

What the models and the pages use (Gregor, Szlam & LeCun, NIPS 2011):
- `inhibition_pattern(tree)`: (N, N) bool, True where S_ij may be positive: i ≠ j and neither is
  an ancestor of the other (units of different trees always). With S on this pattern, active
  units tend to lie along one root-to-leaf path.
- group structures for group sparsity: `subtree_groups` (every subtree), `depth_groups` (the
  subtrees rooted at one depth), `path_groups` (root-to-leaf paths); each a tuple of unit-index
  tuples, usable as `GroupSpec(kind="list", map_shape=(1, N), groups=...)` (`group_spec`);
  `GroupSpec(kind="tree", ...)` names them for complete trees (and imports this module).
- statistics of codes on a tree: unit and branch usage, path share, parent–child filter
  similarity (`tree_statistics`), and `prune_tree` to drop rarely used branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from .config import ConfigError, check

if TYPE_CHECKING:  # groups.py builds its tree pools from this module: no import back at run time
    from .groups import GroupSpec

MAX_UNITS = 4096  # units in one forest: S is a dense (N, N) matrix, 64 MB of float32 at 4096
_COUNT_CAP = 10**9  # tree sizes are counted exactly up to here (for the error message)


def tree_size(depth: int, branching: int) -> int:
    """Units in one complete tree of `depth` levels and `branching` children per inner unit
    (counting stops past 10⁹, returning 10⁹ + 1, so huge values never blow up)."""
    n, level = 0, 1
    for _ in range(depth):
        n += level
        if n > _COUNT_CAP:
            return _COUNT_CAP + 1
        level *= branching
    return n


def check_tree_shape(depth: int, branching: int, n_trees: int = 1, where: str = "",
                     why_limit: str = "S is a dense units × units matrix") -> int:
    """The number of units of `n_trees` trees of `depth` levels and `branching`, or a
    ConfigError in words when a number is not allowed or the forest is above MAX_UNITS
    (`why_limit` says why there is a limit, for the caller's kind of model)."""
    for name, v in (("depth", depth), ("branching", branching), ("n_trees", n_trees)):
        check(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1,
              f"tree {where}{name} must be a positive integer, got {v!r}")
    per = tree_size(depth, branching)
    n = per * n_trees
    if n > MAX_UNITS:
        per_txt = f"{per} units" if per <= _COUNT_CAP else f"more than {_COUNT_CAP} units"
        raise ConfigError(
            f"a tree of depth {depth} and branching {branching} has {per_txt}"
            + (f", × {n_trees} trees" if n_trees > 1 else "")
            + f": above the limit of {MAX_UNITS} units ({why_limit}). "
              f"Lower the depth, the branching or the number of trees.")
    return n


@dataclass(frozen=True)
class Tree:
    """A forest of units given by `parents` (−1 for roots, parents before children)."""

    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        p = tuple(int(v) for v in self.parents)
        object.__setattr__(self, "parents", p)
        check(len(p) >= 1, "a tree needs at least one unit")
        check(len(p) <= MAX_UNITS,
              f"a tree of {len(p)} units is above the limit of {MAX_UNITS} units")
        for i, q in enumerate(p):
            check(q == -1 or 0 <= q < i,
                  f"unit {i}'s parent must be −1 (a root) or a unit before it (0..{i - 1}); "
                  f"got {q}")

    @property
    def n_units(self) -> int:
        return len(self.parents)

    @cached_property
    def parent_array(self) -> np.ndarray:
        return np.asarray(self.parents, dtype=np.int64)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in self.parents]
        for i, q in enumerate(self.parents):
            if q >= 0:
                kids[q].append(i)
        return tuple(tuple(k) for k in kids)

    @cached_property
    def roots(self) -> tuple[int, ...]:
        return tuple(i for i, q in enumerate(self.parents) if q < 0)

    @cached_property
    def leaves(self) -> tuple[int, ...]:
        return tuple(i for i, k in enumerate(self.children) if not k)

    @cached_property
    def depths(self) -> np.ndarray:
        """(N,) depth of each unit: 0 for a root."""
        d = np.zeros(self.n_units, dtype=np.int64)
        for i, q in enumerate(self.parents):
            if q >= 0:
                d[i] = d[q] + 1
        return d

    @cached_property
    def tree_index(self) -> np.ndarray:
        """(N,) which tree (0, 1, … in the order of the roots) each unit belongs to."""
        t = np.zeros(self.n_units, dtype=np.int64)
        k = 0
        for i, q in enumerate(self.parents):
            if q < 0:
                t[i] = k
                k += 1
            else:
                t[i] = t[q]
        return t

    def ancestors(self, i: int) -> tuple[int, ...]:
        """Unit i's ancestors, nearest first (its parent, grandparent, …, its root)."""
        out = []
        q = self.parents[i]
        while q >= 0:
            out.append(q)
            q = self.parents[q]
        return tuple(out)

    def descendants(self, i: int) -> tuple[int, ...]:
        """Unit i's descendants (not i itself), in increasing index order."""
        return self.subtree(i)[1:]

    def subtree(self, i: int) -> tuple[int, ...]:
        """The units of the subtree rooted at i, i first, in increasing index order."""
        return tuple(int(j) for j in np.flatnonzero(self.related[i] & (self.depths >= self.depths[i])))

    @cached_property
    def related(self) -> np.ndarray:
        """(N, N) bool: True where i == j or one is an ancestor of the other."""
        n = self.n_units
        anc = np.eye(n, dtype=bool)  # anc[i, j]: j is i or an ancestor of i
        for i, q in enumerate(self.parents):
            if q >= 0:
                anc[i] |= anc[q]
        return anc | anc.T

    def paths(self) -> tuple[tuple[int, ...], ...]:
        """Every root-to-leaf path, root first, one per leaf (in leaf order)."""
        return tuple(tuple(reversed((leaf,) + self.ancestors(leaf))) for leaf in self.leaves)

    def dfs_order(self) -> np.ndarray:
        """(N,) the units in depth-first (pre-)order: each subtree contiguous, e.g. to order the
        rows and columns of S so that every branch is a block."""
        out: list[int] = []
        stack = list(reversed(self.roots))
        while stack:
            i = stack.pop()
            out.append(i)
            stack.extend(reversed(self.children[i]))
        return np.asarray(out, dtype=np.int64)

    def describe(self) -> str:
        depth = int(self.depths.max()) + 1
        return (f"{len(self.roots)} tree{'s' if len(self.roots) > 1 else ''}, {self.n_units} "
                f"units, depth {depth}")


def make_tree(depth: int, branching: int, n_trees: int = 1) -> Tree:
    """`n_trees` complete trees of `depth` levels with `branching` children per inner unit, each
    a contiguous block of units in breadth-first order."""
    per = check_tree_shape(depth, branching, n_trees) // n_trees
    one = [-1] + [(i - 1) // branching for i in range(1, per)]  # BFS numbering of a full tree
    parents: list[int] = []
    for t in range(n_trees):
        off = t * per
        parents.extend(q if q < 0 else q + off for q in one)
    return Tree(tuple(parents))


def inhibition_pattern(tree: Tree) -> np.ndarray:
    """(N, N) bool: True where S_ij may be positive, i.e. i ≠ j and neither unit is an ancestor
    of the other (units of different trees are never related, so always True)."""
    return ~tree.related


def subtree_groups(tree: Tree) -> tuple[tuple[int, ...], ...]:
    """Every subtree (one rooted at each unit), as groups of unit indices."""
    return tuple(tree.subtree(i) for i in range(tree.n_units))


def depth_groups(tree: Tree, depth: int) -> tuple[tuple[int, ...], ...]:
    """The subtrees rooted at the units of `depth` (0: whole trees), and each shallower unit as
    a group of its own, so that every unit is in a group (as `GroupSpec` requires)."""
    max_depth = int(tree.depths.max())
    check(0 <= depth <= max_depth,
          f"subtree depth must be between 0 (whole trees) and {max_depth} (the leaves' depth), "
          f"got {depth}")
    shallow = tuple((i,) for i in np.flatnonzero(tree.depths < depth).tolist())
    return shallow + tuple(tree.subtree(int(i)) for i in np.flatnonzero(tree.depths == depth))


def path_groups(tree: Tree) -> tuple[tuple[int, ...], ...]:
    """Every root-to-leaf path, as groups of unit indices (root first)."""
    return tree.paths()


def group_spec(tree: Tree, groups: tuple[tuple[int, ...], ...]) -> GroupSpec:
    """The groups as a `GroupSpec` of kind list on a 1 × N strip (for a group-sparse model).
    `GroupSpec(kind="tree", ...)` builds the pools of complete trees itself."""
    from .groups import GroupSpec

    return GroupSpec(kind="list", map_shape=(1, tree.n_units), groups=groups)


def prune_tree(tree: Tree, remove: np.ndarray) -> tuple[Tree, np.ndarray]:
    """The tree without the subtrees rooted at the units marked in `remove` (N,) bool.

    Returns the new tree (parents re-indexed, order kept) and `kept`: (M,) the old index of
    each new unit. ConfigError when nothing would be left."""
    remove = np.asarray(remove, dtype=bool)
    check(remove.shape == (tree.n_units,),
          f"remove must mark each of the {tree.n_units} units, got shape {remove.shape}")
    gone = remove.copy()
    for i, q in enumerate(tree.parents):  # parents come first: a removed parent removes i
        if q >= 0 and gone[q]:
            gone[i] = True
    kept = np.flatnonzero(~gone)
    if kept.size == 0:
        raise ConfigError("pruning would remove every branch of the tree; nothing would be left")
    new_index = -np.ones(tree.n_units, dtype=np.int64)
    new_index[kept] = np.arange(kept.size)
    parents = tuple(int(new_index[tree.parents[i]]) if tree.parents[i] >= 0 else -1
                    for i in kept.tolist())
    return Tree(parents), kept


# --- statistics of codes on a tree -------------------------------------------------------------

def active(codes: torch.Tensor | np.ndarray, eps: float = 0.0) -> np.ndarray:
    """(B, N) bool: which units are active (|z| > eps) on each input."""
    z = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    return np.abs(z) > eps


def unit_usage(codes: torch.Tensor | np.ndarray, eps: float = 0.0) -> np.ndarray:
    """(N,) share of inputs on which each unit is active."""
    a = active(codes, eps)
    return a.mean(0) if a.shape[0] else np.zeros(a.shape[1])


def branch_usage(tree: Tree, codes: torch.Tensor | np.ndarray, eps: float = 0.0) -> np.ndarray:
    """(N,) for each unit, the share of inputs on which any unit of its subtree is active
    (a subtree's usage is never above its parent's)."""
    a = active(codes, eps).astype(np.float32)
    if a.shape[0] == 0:
        return np.zeros(tree.n_units)
    below = (tree.related & (tree.depths[None, :] >= tree.depths[:, None])).astype(np.float32)
    return ((a @ below.T) > 0).mean(0)  # below[i, j]: j is in i's subtree


def path_share(tree: Tree, codes: torch.Tensor | np.ndarray, eps: float = 0.0) -> tuple[float, float]:
    """(share of the inputs with an active unit whose active units all lie on one root-to-leaf
    path, share of inputs with any active unit). Units lie on one path exactly when no two of
    them may inhibit each other on the tree (`inhibition_pattern`)."""
    a = active(codes, eps)
    any_active = a.any(1)
    if not any_active.any():
        return float("nan"), 0.0
    af = a[any_active].astype(np.float32)
    clashes = ((af @ inhibition_pattern(tree).astype(np.float32)) * af).sum(1)
    return float((clashes == 0).mean()), float(any_active.mean())


def _abs_cosines(filters: torch.Tensor | np.ndarray) -> np.ndarray:
    f = filters.detach().cpu().numpy() if isinstance(filters, torch.Tensor) else np.asarray(filters)
    f = f.reshape(f.shape[0], -1).astype(np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return np.abs(f @ f.T)


def parent_child_similarity(tree: Tree, filters: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Mean |cosine| between each unit's filter and its children's (over all parent–child
    pairs), against the mean over all pairs of distinct units, and their ratio. NaN where the
    tree has no edge or only one unit."""
    c = _abs_cosines(filters)
    n = tree.n_units
    edges = [(q, i) for i, q in enumerate(tree.parents) if q >= 0]
    pc = float(np.mean([c[q, i] for q, i in edges])) if edges else float("nan")
    off = ~np.eye(n, dtype=bool)
    allp = float(c[off].mean()) if n > 1 else float("nan")
    ratio = pc / allp if edges and n > 1 and allp > 0 else float("nan")
    return {"parent_child": pc, "all_pairs": allp, "ratio": ratio}


def tree_statistics(tree: Tree, codes: torch.Tensor | np.ndarray,
                    filters: torch.Tensor | np.ndarray | None = None,
                    eps: float = 0.0) -> dict[str, object]:
    """Everything above in one dict: `unit_usage`, `branch_usage` (N,) arrays; `path_share`,
    `active_share`, and with filters `parent_child_similarity`, `all_pairs_similarity`,
    `similarity_ratio` (floats); `depth_usage` (mean unit usage per depth)."""
    uu = unit_usage(codes, eps)
    share, act = path_share(tree, codes, eps)
    out: dict[str, object] = {
        "unit_usage": uu,
        "branch_usage": branch_usage(tree, codes, eps),
        "path_share": share,
        "active_share": act,
        "mean_active_units": float(active(codes, eps).sum(1).mean()) if len(uu) else 0.0,
        "depth_usage": np.array([uu[tree.depths == d].mean()
                                 for d in range(int(tree.depths.max()) + 1)]),
    }
    if filters is not None:
        sim = parent_child_similarity(tree, filters)
        out["parent_child_similarity"] = sim["parent_child"]
        out["all_pairs_similarity"] = sim["all_pairs"]
        out["similarity_ratio"] = sim["ratio"]
    return out
