"""The Tree page: a tiny lateral tree run drawn, another layout refused in words, an input's
active units, and pruning and retraining started as background jobs; a topographic run with tree
groups drawn without S or pruning, and the Train page's tree group kind trained as typed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app_ui.testing import cli_train, finish_jobs, open_app, private_runs
from sparse_models.models.lateral import Lateral
from sparse_models.models.topographic import Topographic
from sparse_models.training.runs import load_run

PAGE = "../pages/tree.py"
TINY = [f"{k}={v}" for k, v in Lateral.tiny.items()] + ["model.lam=0.05"]
TINY_TOPO_TREE = [f"{k}={v}" for k, v in Topographic.tiny.items()
                  if not k.startswith("model.group.")] + [
    "model.group.kind=tree", "model.group.depth=3", "model.group.branching=2",
    "model.group.n_trees=2", "model.group.map_shape=[1,14]", "model.lam=0.05"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tree-page-runs")
    with private_runs(d):
        cli_train(d, "lateral", "tiny-tree", TINY)
        cli_train(d, "lateral", "tiny-flat", TINY + ["model.structure=all", "model.n_units=8"])
        cli_train(d, "topographic", "tiny-topo-tree", TINY_TOPO_TREE)
        yield d


def _texts(at, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def test_a_tree_run_is_drawn_with_its_numbers(runs):
    at = open_app(PAGE, run="tiny-tree")
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert {"On one path", "Parent–child similarity", "Clashes", "Rare branches"} <= set(labels)
    report = load_run(runs / "tiny-tree").read_analysis()["entries"]
    (entry,) = report.values()
    assert labels["On one path"] == f"{100 * entry['path_share']:.1f} %"
    assert len(at.get("plotly_chart")) == 5  # tree, input, reconstruction, usage, S
    said = _texts(at, "success") + _texts(at, "warning") + _texts(at, "info")
    assert "one root-to-leaf path" in said or "not on one path" in said or "all zero" in said


def test_the_chosen_input_changes_the_active_units(runs):
    run = load_run(runs / "tiny-tree")
    x = run.dataset().x.float()
    codes = run.model.encode(x.reshape(x.shape[0], -1)).detach().numpy()
    i = int(np.flatnonzero((np.abs(codes) > 0).sum(1) >= 1)[-1])  # a sample with active units
    at = open_app(PAGE, run="tiny-tree")
    at.number_input(key="tree_sample").set_value(i).run()
    assert not at.exception, [e.message for e in at.exception]
    active = np.flatnonzero(np.abs(codes[i]) > 0)
    caption = next(c.value for c in at.caption if c.value.startswith("Active units"))
    assert sorted(int(t.split(" ")[0]) for t in caption.split(": ", 1)[1].split("), ")) \
        == sorted(active.tolist())
    # the choice is kept in the URL: a link with it opens the same view
    linked = open_app(PAGE, run="tiny-tree", tree_sample=str(i))
    assert linked.number_input(key="tree_sample").value == i
    assert caption in [c.value for c in linked.caption]


def test_a_run_that_is_not_a_tree_is_explained(runs):
    at = open_app(PAGE, run="tiny-flat")
    assert not at.exception and not at.error
    said = _texts(at, "info").replace("\\", "")  # the Markdown escapes of `plain`
    assert "tiny-flat is a 'lateral' run whose units have no spatial layout" in said
    assert "structure 'all'" in said and "Train page" in said
    assert not at.get("plotly_chart") and not at.metric


def test_prune_and_continue_training_makes_a_smaller_run_in_the_background(runs):
    run = load_run(runs / "tiny-tree")
    x = run.dataset().x.float()
    usage = run.model.branch_usage(x.reshape(x.shape[0], -1))
    # the slider's smallest step above the least used branch
    t = math.floor(100 * usage.min() / 0.25 + 1) * 0.25
    assert t < 100 * usage.max() and t <= 20, f"no slider value prunes part of {usage}"
    at = open_app(PAGE, run="tiny-tree")
    at.slider(key="tree_threshold").set_value(t).run()
    at.number_input(key="tree_prune_steps").set_value(2).run()
    at.text_input(key="tree_prune_name").set_value("tiny-pruned").run()
    at.button(key="tree_prune").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Pruned" in _texts(at, "success")
    (job,) = [j for j in finish_jobs(runs) if j.name == "tiny-pruned"]
    assert job.state == "completed", job.error
    new = load_run(runs / "tiny-pruned")
    assert new.model.n_units == int((usage >= t / 100).sum()) < run.model.n_units
    assert new.config.parent == str(runs / "tiny-tree") and new.config.train.steps == 2


def test_retrain_controls_start_a_new_tree_and_refuse_a_too_large_one(runs):
    at = open_app(PAGE, run="tiny-tree")
    at.number_input(key="tree_depth").set_value(12).run()
    at.number_input(key="tree_branching").set_value(64).run()
    assert "above the limit" in _texts(at, "error")
    assert at.button(key="tree_retrain").disabled
    at.number_input(key="tree_depth").set_value(2).run()
    at.number_input(key="tree_branching").set_value(2).run()
    at.number_input(key="tree_n_trees").set_value(3).run()
    at.number_input(key="tree_steps").set_value(2).run()
    at.toggle(key="tree_learn_s").set_value(True).run()
    at.text_input(key="tree_name").set_value("tiny-retrained").run()
    assert not at.button(key="tree_retrain").disabled
    at.button(key="tree_retrain").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (job,) = [j for j in finish_jobs(runs) if j.name == "tiny-retrained"]
    assert job.state == "completed", job.error
    cfg = load_run(runs / "tiny-retrained").config.model_config
    assert (cfg.depth, cfg.branching, cfg.n_trees, cfg.learn_s, cfg.parents) == (2, 2, 3, True, ())


def test_a_topographic_run_with_tree_groups_is_drawn_without_s_or_pruning(runs):
    at = open_app(PAGE, run="tiny-topo-tree")
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    report = load_run(runs / "tiny-topo-tree").read_analysis()["entries"]
    (entry,) = report.values()
    assert entry["tree_units"] == 14 and entry["tree_count"] == 2
    assert labels["On one path"] == (f"{100 * entry['path_share']:.1f} %"
                                     if entry["path_share"] is not None else "—")
    assert len(at.get("plotly_chart")) == 4  # tree, input, reconstruction, usage: no S
    captions = _texts(at, "caption")
    assert "model has no S matrix" in captions and "cannot be pruned here" in captions
    assert "other tree groups (pool type *tree*)" in captions.replace("\\", "")
    assert not [b for b in at.button if b.key == "tree_prune"]


def _form_errors(at) -> list[str]:
    """Errors on the page other than the jobs sidebar's word on earlier tiny jobs (a 2-step job
    is rightly called collapsed by its health check)."""
    return [e.value for e in at.error if "collapsed" not in e.value]


def _by_label(widgets, label: str):
    found = [w for w in widgets if w.label == label]
    assert found, f"no widget labelled {label!r}; have {[w.label for w in widgets]}"
    return found[0]


def test_the_train_page_offers_tree_groups_and_trains_what_is_typed(runs):
    """Pool type tree: the tree's own fields, the unit count they make, a too large tree
    refused, and the job trained with exactly the typed values."""
    at = open_app("../pages/train.py", train_model="topographic")
    _by_label(at.selectbox, "Pool type").set_value("tree").run()
    assert not at.exception, [e.message for e in at.exception]
    labels = {w.label for w in at.number_input}
    assert {"Tree depth (levels)", "Branching", "Number of trees"} <= labels
    assert "Map rows" not in labels  # a tree has no map to size
    _by_label(at.number_input, "Tree depth (levels)").set_value(12).run()
    _by_label(at.number_input, "Branching").set_value(64).run()
    assert "above the limit of 4096 units" in _texts(at, "error")
    assert at.button(key="train_start").disabled
    _by_label(at.number_input, "Tree depth (levels)").set_value(3).run()
    _by_label(at.number_input, "Branching").set_value(3).run()
    _by_label(at.number_input, "Number of trees").set_value(2).run()
    _by_label(at.selectbox, "Tree pools").set_value("depth").run()
    _by_label(at.number_input, "Subtree level").set_value(1).run()
    assert not _form_errors(at)
    assert "2 trees × 13 units = **26 units**" in _texts(at, "caption")
    assert any("pools (the subtrees rooted at level 1; 2 shallower unit(s) alone)" in c
               for c in _texts(at, "caption").splitlines())
    _by_label(at.number_input, "Patches").set_value(256).run()
    _by_label(at.number_input, "Steps").set_value(3).run()
    _by_label(at.number_input, "Batch size").set_value(32).run()
    at.text_input(key="train_name").set_value("app-topo-tree").run()
    assert not at.button(key="train_start").disabled
    at.button(key="train_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not _form_errors(at)
    (job,) = [j for j in finish_jobs(runs) if j.name == "app-topo-tree"]
    assert job.state == "completed", job.error
    run = load_run(runs / "app-topo-tree")
    g = run.config.model_config.group
    assert (g.kind, g.depth, g.branching, g.n_trees, g.pools, g.level, g.map_shape) == \
        ("tree", 3, 3, 2, "depth", 1, (1, 26))
    assert run.layout.kind == "tree" and run.model.n_units == 26
