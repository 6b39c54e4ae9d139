"""Tree groups (GroupSpec kind 'tree') for the group-sparse auto-encoder: the pools are the
`trees.py` group builders' pools, bad trees are refused in words, configs written before the
kind existed load as they were, and a topographic model with tree groups trains and is a tree."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from sparse_models.config import ConfigError, from_dict, to_dict
from sparse_models.groups import GroupSpec
from sparse_models.models import build_model
from sparse_models.models.topographic import Topographic
from sparse_models.presets import build_run_config
from sparse_models.training.runs import SHIPPED_DIR
from sparse_models.trees import (
    check_tree_shape,
    depth_groups,
    group_spec,
    make_tree,
    path_groups,
    subtree_groups,
)

SHAPES = [(1, 3, 1), (2, 2, 1), (3, 2, 1), (3, 3, 2), (2, 5, 3), (3, 1, 2), (4, 2, 1),
          (3, 4, 4)]
OLD_KEYS = ("kind", "map_shape", "size", "stride", "wrap", "sigma", "groups")


def tree_spec(depth: int, branching: int, n_trees: int = 1, **kw) -> GroupSpec:
    n = check_tree_shape(depth, branching, n_trees)
    return GroupSpec(kind="tree", map_shape=(1, n), depth=depth, branching=branching,
                     n_trees=n_trees, **kw)


def members(P: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in np.flatnonzero(row)) for row in P]


@pytest.mark.parametrize("depth,branching,n_trees", SHAPES)
def test_pools_are_the_tree_group_builders_pools(depth, branching, n_trees):
    """The same pools built the other way: trees.py's groups through a kind 'list' spec."""
    tree = make_tree(depth, branching, n_trees)
    expected = {"subtrees": subtree_groups(tree), "paths": path_groups(tree)}
    for level in range(depth):
        expected[f"depth{level}"] = depth_groups(tree, level)
    for name, groups in expected.items():
        pools = "depth" if name.startswith("depth") else name
        level = int(name[5:]) if pools == "depth" else 1
        spec = tree_spec(depth, branching, n_trees, pools=pools, level=level)
        P = spec.pool_matrix()
        reference = group_spec(tree, groups).pool_matrix()
        assert P.dtype == np.float32 and np.array_equal(P, reference), name
        assert members(P) == list(groups)
        assert (P.sum(0) > 0).all()  # every unit is in a pool
        assert spec.tree().parents == tree.parents


def test_pool_structure_on_two_small_trees():
    spec = tree_spec(3, 2, 2)  # 2 trees of 7 units
    P = spec.pool_matrix()
    assert P.shape == (14, 14)
    assert members(P)[0] == tuple(range(7)) and members(P)[7] == tuple(range(7, 14))
    assert (P[:7, 7:] == 0).all() and (P[7:, :7] == 0).all()  # no pool spans two trees
    paths = tree_spec(3, 2, 2, pools="paths").pool_matrix()
    assert paths.shape == (8, 14) and (paths.sum(1) == 3).all()  # 4 leaves a tree, 3 levels
    level1 = tree_spec(3, 2, 2, pools="depth", level=1).pool_matrix()
    assert sorted(int(s) for s in level1.sum(1)) == [1, 1, 3, 3, 3, 3]  # roots alone
    assert "subtree pools" in spec.describe() and "2 trees of depth 3" in spec.describe()


def test_a_tree_with_more_units_than_allowed_is_refused():
    with pytest.raises(ConfigError, match="above the limit of 4096 units .*pool matrix"):
        GroupSpec(kind="tree", map_shape=(1, 4), depth=7, branching=4, n_trees=2)


@pytest.mark.parametrize("kw,msg", [
    ({"depth": 0}, "tree depth must be a positive integer"),
    ({"branching": -1}, "tree branching must be a positive integer"),
    ({"n_trees": 0}, "tree n_trees must be a positive integer"),
    ({"depth": 2.5}, "tree depth must be a positive integer"),
    ({"depth": 13, "branching": 1, "map_shape": (1, 13)}, "at most 12"),
    ({"map_shape": (16, 16)}, r"map_shape must be \[1, 21\]"),
    ({"map_shape": (3, 7)}, r"map_shape must be \[1, 21\]"),
    ({"pools": "depth", "level": 3}, r"between 0 \(whole trees\) and 2"),
    ({"pools": "depth", "level": -1}, r"between 0 \(whole trees\) and 2"),
    ({"pools": "leaves"}, "tree pools must be subtrees, depth or paths"),
])
def test_bad_tree_groups_give_clear_errors(kw, msg):
    args = {"kind": "tree", "map_shape": (1, 21), "depth": 3, "branching": 4, **kw}
    with pytest.raises(ConfigError, match=msg):
        GroupSpec(**args)


def test_bad_tree_groups_from_a_config_dict_name_the_field():
    with pytest.raises(ConfigError, match="model.group.pools"):
        build_model("topographic", {"group": {"kind": "tree", "map_shape": [1, 21],
                                              "pools": "leaves"}})
    with pytest.raises(ConfigError, match=r"map_shape must be \[1, 84\]"):
        build_run_config("topographic", {"model.group.kind": "tree",
                                         "model.group.n_trees": 4})


def test_an_aperture_on_a_tree_is_refused():
    with pytest.raises(ConfigError, match="aperture .* tree"):
        build_model("topographic", {"aperture": 2.0, "group": to_dict(tree_spec(2, 3))})


def test_tree_fields_leave_other_kinds_unchanged():
    """The defaults of the new fields are never read by the other kinds: a spec and a spec with
    other tree values have the same pools."""
    for kw in ({"kind": "neighbourhood", "map_shape": (6, 6), "size": 3, "sigma": 1.0},
               {"kind": "blocks", "map_shape": (4, 4), "size": 2},
               {"kind": "none", "map_shape": (2, 3)}):
        a = GroupSpec(**kw).pool_matrix()
        b = GroupSpec(**kw, depth=5, branching=2, n_trees=3, pools="paths").pool_matrix()
        assert np.array_equal(a, b)


def test_old_group_configs_load_unchanged():
    """A group dict written before the tree fields existed: loads, round-trips with the new
    fields at their defaults, and its old keys come back exactly as stored."""
    old = {"kind": "neighbourhood", "map_shape": [16, 16], "size": 5, "stride": 1,
           "wrap": True, "sigma": 1.0, "groups": []}
    spec = from_dict(GroupSpec, old)
    d = to_dict(spec)
    assert {k: d[k] for k in OLD_KEYS} == old
    assert from_dict(GroupSpec, d) == spec
    tree = tree_spec(3, 4, 2, pools="depth", level=2)
    assert from_dict(GroupSpec, json.loads(json.dumps(to_dict(tree)))) == tree


SHIPPED_TOPO = sorted(p for p in Path(SHIPPED_DIR).iterdir()
                      if (p / "config.json").exists() and
                      json.loads((p / "config.json").read_text()).get("model") == "topographic")


@pytest.mark.parametrize("path", SHIPPED_TOPO, ids=[p.name for p in SHIPPED_TOPO])
def test_shipped_topographic_runs_build_their_stored_pools_bit_for_bit(path):
    """Their config.json has no tree fields; the pool matrix it builds now is the one stored in
    their weights when they were trained."""
    raw = json.loads((path / "config.json").read_text())["model_config"]["group"]
    # runs made before tree groups have only the old keys; later ones (the shipped sweep) all
    assert set(raw) in (set(OLD_KEYS), {f.name for f in dataclasses.fields(GroupSpec)})
    spec = from_dict(GroupSpec, raw)
    with safe_open(str(path / "weights.safetensors"), framework="pt") as f:
        stored = f.get_tensor("P").numpy()
    assert stored.dtype == spec.pool_matrix().dtype
    assert np.array_equal(stored, spec.pool_matrix())


TREE_SETTINGS = {"model.group.kind": "tree", "model.group.depth": 3, "model.group.branching": 2,
                 "model.group.n_trees": 2, "model.group.map_shape": [1, 14]}


def tiny_tree_settings(**extra) -> dict:
    """The topographic model's tiny run with 2 trees of depth 3 and branching 2 as groups."""
    settings = {k: v for k, v in Topographic.tiny.items()
                if not k.startswith("model.group.")}
    return {**settings, **TREE_SETTINGS, **extra}


def test_tiny_topographic_model_with_tree_groups_trains_and_is_a_tree():
    torch.manual_seed(0)
    config = build_run_config("topographic", tiny_tree_settings())
    model = build_model("topographic", config.model_config)
    assert model.n_units == 14 and model.pools().shape == (14, 14)
    layout = model.layout
    assert layout.kind == "tree" and layout.parents == make_tree(3, 2, 2).parents
    assert layout.n_units == model.n_units
    assert layout.map_shape()[0] is None  # no orientation map for a tree
    c, h, w = model.input_shape
    x = torch.randn(64, h * w)
    opt = torch.optim.Adam(model.param_groups(1e-2))
    before = model.D.detach().clone()
    losses = [float(model.train_step(x, None, opt)["loss"]) for _ in range(20)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert not torch.equal(model.D.detach(), before)
    assert model.encode(x).shape == (64, 14)
    assert "subtree pools" in Topographic.summarize_config(model.config)


@pytest.mark.parametrize("pools", ["subtrees", "depth", "paths"])
def test_a_tree_grouped_run_trains_from_the_cli_and_its_analysis_has_the_tree(tmp_path, pools):
    from sparse_models.analysis.cached import analyze_run
    from sparse_models.cli import main
    from sparse_models.training.runs import load_run

    settings = tiny_tree_settings(**{"model.group.pools": pools, "model.lam": 0.05})
    args = ["train", "topographic", "--out", str(tmp_path), "--name", "t", "--quiet"]
    for k, v in settings.items():
        args += ["--set", f"{k}={json.dumps(v) if isinstance(v, list) else v}"]
    assert main(args) == 0
    run = load_run(tmp_path / "t")
    assert run.state == "completed"
    assert run.model.config.group.pools == pools  # the value typed is the value trained
    assert run.layout.kind == "tree" and len(run.layout.parents) == 14
    report = analyze_run(run)
    assert report["why_no_tree"] is None and report["tree_units"] == 14
    assert report["tree_count"] == 2 and report["tree_depth"] == 3
    for k in ("path_share", "parent_child_similarity_ratio", "explained_variance"):
        assert k in report
    assert report["why_no_map"] == "its units form a tree, not a 2-D map"
