"""Trees of units: shape, inhibition pattern, groups, pruning and code statistics."""

import itertools

import numpy as np
import pytest

from sparse_models.config import ConfigError
from sparse_models.groups import GroupSpec
from sparse_models.trees import (
    MAX_UNITS,
    Tree,
    branch_usage,
    depth_groups,
    group_spec,
    inhibition_pattern,
    make_tree,
    parent_child_similarity,
    path_groups,
    path_share,
    prune_tree,
    subtree_groups,
    tree_size,
    tree_statistics,
    unit_usage,
)

SHAPES = [(1, 3, 1), (2, 2, 1), (3, 2, 1), (3, 3, 2), (4, 2, 1), (2, 5, 3), (3, 1, 2), (5, 2, 1)]


def brute_ancestor(parents, i, j):
    """Whether j is a proper ancestor of i, by walking up from i."""
    q = parents[i]
    while q >= 0:
        if q == j:
            return True
        q = parents[q]
    return False


@pytest.mark.parametrize("depth,branching,n_trees", SHAPES)
def test_complete_trees_have_the_right_shape(depth, branching, n_trees):
    t = make_tree(depth, branching, n_trees)
    per = sum(branching ** k for k in range(depth))
    assert t.n_units == per * n_trees == tree_size(depth, branching) * n_trees
    assert len(t.roots) == n_trees and t.roots == tuple(k * per for k in range(n_trees))
    assert all(q == -1 or q < i for i, q in enumerate(t.parents))
    # each tree is a block in breadth-first order: depths never decrease inside a block
    for k in range(n_trees):
        d = t.depths[k * per:(k + 1) * per]
        assert np.all(np.diff(d) >= 0)
        assert [int((d == lvl).sum()) for lvl in range(depth)] == [branching ** lvl for lvl in range(depth)]
    assert len(t.leaves) == n_trees * branching ** (depth - 1)
    inner = [i for i in range(t.n_units) if t.depths[i] < depth - 1]
    assert all(len(t.children[i]) == branching for i in inner)
    assert np.array_equal(np.bincount(t.tree_index), np.full(n_trees, per))


@pytest.mark.parametrize("depth,branching,n_trees", SHAPES)
def test_inhibition_pattern_is_zero_exactly_on_related_pairs(depth, branching, n_trees):
    t = make_tree(depth, branching, n_trees)
    p = inhibition_pattern(t)
    n = t.n_units
    want = np.zeros((n, n), dtype=bool)
    for i, j in itertools.product(range(n), range(n)):
        want[i, j] = i != j and not brute_ancestor(t.parents, i, j) and not brute_ancestor(t.parents, j, i)
    assert np.array_equal(p, want)
    assert np.array_equal(p, p.T) and not p.diagonal().any()
    # a unit at depth d has d ancestors and b + b² + … + b^(D−1−d) descendants
    for i in range(n):
        d = int(t.depths[i])
        desc = sum(branching ** k for k in range(1, depth - d))
        assert int((~p[i]).sum()) == 1 + d + desc
    # units of different trees always inhibit each other
    other = t.tree_index[:, None] != t.tree_index[None, :]
    assert p[other].all()


def test_a_small_pattern_by_hand():
    # 0 ─ 1 ─ 3,4 ; 0 ─ 2 ─ 5,6
    p = inhibition_pattern(make_tree(3, 2)).astype(int)
    assert p[1].tolist() == [0, 0, 1, 0, 0, 1, 1]
    assert p[3].tolist() == [0, 0, 1, 0, 1, 1, 1]
    assert p[0].tolist() == [0] * 7


def test_ancestors_descendants_and_paths():
    t = make_tree(3, 2, 2)  # units 0–6 and 7–13
    assert t.ancestors(12) == (9, 7) and t.ancestors(7) == ()
    assert t.descendants(1) == (3, 4) and t.descendants(7) == (8, 9, 10, 11, 12, 13)
    assert t.paths() == ((0, 1, 3), (0, 1, 4), (0, 2, 5), (0, 2, 6),
                         (7, 8, 10), (7, 8, 11), (7, 9, 12), (7, 9, 13))
    assert t.dfs_order().tolist() == [0, 1, 3, 4, 2, 5, 6, 7, 8, 10, 11, 9, 12, 13]


def test_groups_on_a_small_tree():
    t = make_tree(3, 2)
    assert subtree_groups(t) == ((0, 1, 2, 3, 4, 5, 6), (1, 3, 4), (2, 5, 6),
                                 (3,), (4,), (5,), (6,))
    assert depth_groups(t, 0) == ((0, 1, 2, 3, 4, 5, 6),)
    assert depth_groups(t, 1) == ((0,), (1, 3, 4), (2, 5, 6))
    assert depth_groups(t, 2) == ((0,), (1,), (2,), (3,), (4,), (5,), (6,))
    assert path_groups(t) == ((0, 1, 3), (0, 1, 4), (0, 2, 5), (0, 2, 6))
    for groups in (subtree_groups(t), depth_groups(t, 1), path_groups(t)):
        spec = group_spec(t, groups)
        assert isinstance(spec, GroupSpec) and spec.kind == "list"
        P = spec.pool_matrix()
        assert P.shape == (len(groups), 7)
        assert [tuple(np.flatnonzero(row)) for row in P] == list(groups)
    with pytest.raises(ConfigError, match="between 0 .* and 2"):
        depth_groups(t, 3)


def test_prune_tree_reindexes_parents():
    t = make_tree(3, 2, 2)
    remove = np.zeros(14, dtype=bool)
    remove[[2, 11]] = True  # the subtree of unit 2 (2, 5, 6) and the leaf 11
    new, kept = prune_tree(t, remove)
    assert kept.tolist() == [0, 1, 3, 4, 7, 8, 9, 10, 12, 13]
    assert new.parents == (-1, 0, 1, 1, -1, 4, 4, 5, 6, 6)
    with pytest.raises(ConfigError, match="every branch"):
        prune_tree(t, t.depths == 0)  # removing both roots removes everything


def test_branch_usage_and_path_share_by_hand():
    t = make_tree(3, 2)
    codes = np.zeros((4, 7))
    codes[0, [0, 1, 3]] = 1.0  # one path
    codes[1, [2, 6]] = -0.5  # one path (not from the root)
    codes[2, [3, 5]] = 1.0  # two branches: not a path
    # input 3: nothing active
    assert unit_usage(codes).tolist() == [0.25, 0.25, 0.25, 0.5, 0, 0.25, 0.25]
    assert branch_usage(t, codes).tolist() == [0.75, 0.5, 0.5, 0.5, 0, 0.25, 0.25]
    share, act = path_share(t, codes)
    assert share == pytest.approx(2 / 3) and act == 0.75
    assert np.isnan(path_share(t, np.zeros((3, 7)))[0])
    stats = tree_statistics(t, codes)
    assert stats["depth_usage"].tolist() == pytest.approx([0.25, 0.25, 0.25])
    assert stats["mean_active_units"] == pytest.approx((3 + 2 + 2 + 0) / 4)


def test_parent_child_similarity_by_hand():
    t = make_tree(2, 2)  # 0 with children 1 and 2
    f = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    sim = parent_child_similarity(t, f)
    assert sim["parent_child"] == pytest.approx(0.5)  # |cos| 1 and 0
    assert sim["all_pairs"] == pytest.approx(1 / 3)  # pairs (0,1)=1, (0,2)=0, (1,2)=0
    assert sim["ratio"] == pytest.approx(1.5)


def test_bad_tree_shapes_are_refused_in_words():
    with pytest.raises(ConfigError, match="depth must be a positive integer"):
        make_tree(0, 2)
    with pytest.raises(ConfigError, match="branching must be a positive integer"):
        make_tree(3, 0)
    with pytest.raises(ConfigError, match="n_trees must be a positive integer"):
        make_tree(3, 2, -1)
    with pytest.raises(ConfigError, match=r"depth 7 and branching 4 has 5461 units.*limit of 4096"):
        make_tree(7, 4)
    with pytest.raises(ConfigError, match=r"1365 units, × 4 trees.*limit of 4096"):
        make_tree(6, 4, 4)  # 5460 units
    assert make_tree(6, 4, 3).n_units == 4095  # just inside
    with pytest.raises(ConfigError, match=r"more than 1000000000 units.*limit of 4096"):
        make_tree(12, 64)  # never counted out in full
    assert tree_size(12, 64) == 10**9 + 1
    assert tree_size(6, 4) == 1365 < MAX_UNITS
    with pytest.raises(ConfigError, match="parent must be"):
        Tree((-1, 2, 0))
    with pytest.raises(ConfigError, match="at least one unit"):
        Tree(())
