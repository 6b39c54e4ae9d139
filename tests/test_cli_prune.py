"""`python -m sparse_models prune`: a new run from the pruned tree, trained on; bad input refused."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app_ui.testing import cli_train
from sparse_models.cli import main
from sparse_models.models.lateral import Lateral
from sparse_models.training.runs import load_run

TINY = [f"{k}={v}" for k, v in Lateral.tiny.items()]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def _branch_usage(run_dir: Path) -> np.ndarray:
    run = load_run(run_dir)
    x = run.dataset().x.float()
    return run.model.branch_usage(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("prune-runs")
    return cli_train(runs, "lateral", "tree", TINY + ["model.lam=0.05"])


def test_prune_makes_a_new_run_that_trains_on_from_the_pruned_weights(tree_run, capsys):
    usage = _branch_usage(tree_run)
    below = np.sort(np.unique(usage))
    assert below.size >= 2, f"the tiny run's branches are all used alike: {usage}"
    threshold = float((below[0] + below[1]) / 2)  # drops the least used branches only
    before = _digest(tree_run)
    src = load_run(tree_run)
    out = tree_run.parent / "pruned-out"
    assert main(["prune", str(tree_run), "--threshold", f"{threshold}", "--name", "pr",
                 "--steps", "3", "--out", str(out), "--quiet"]) == 0
    assert "completed" in capsys.readouterr().out
    assert _digest(tree_run) == before, "the pruned run must never change"

    new = load_run(out / "pr")
    assert new.state == "completed" and new.config.train.steps == 3
    assert new.config.parent == str(tree_run)
    assert new.config.command.startswith("python -m sparse_models prune")
    gone = usage < threshold
    kept = np.flatnonzero(~gone)  # (a used branch never hangs below a less used one)
    assert new.model.n_units == kept.size < src.model.n_units
    # the pruned forest: the kept units' parents, re-indexed
    index = {int(old): i for i, old in enumerate(kept)}
    want = tuple(-1 if src.model.tree.parents[o] < 0 else index[src.model.tree.parents[o]]
                 for o in kept)
    assert tuple(new.config.model_config.parents) == want
    assert tuple(json.loads((out / "pr" / "config.json").read_text())["model_config"]
                 ["parents"]) == want
    # step 0 of the new run is the old run's kept atoms (its learned D), not a fresh start
    steps, snaps, _ = new.snapshots()
    assert steps[0] == 0
    np.testing.assert_allclose(snaps[0], src.filters()[kept], atol=1e-3)  # float16 snapshots
    idx = torch.as_tensor(kept)
    assert torch.equal(new.model.S, src.model.S[idx][:, idx])  # S (not learned here) carried


def test_the_default_name_and_steps_come_from_the_run(tree_run, tmp_path):
    assert main(["prune", str(tree_run), "--threshold", "0", "--out", str(tmp_path),
                 "--quiet"]) == 0
    new = load_run(tmp_path / "tree-pruned")
    src = load_run(tree_run)
    assert new.config.train.steps == src.config.train.steps
    assert new.model.n_units == src.model.n_units  # threshold 0 removes nothing
    assert main(["prune", str(tree_run), "--threshold", "0", "--out", str(tmp_path),
                 "--steps", "1", "--quiet"]) == 0
    assert (tmp_path / "tree-pruned-2").is_dir()  # the name is taken: the next free one


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "nan"])
def test_a_threshold_outside_zero_to_one_is_refused(tree_run, tmp_path, capsys, threshold):
    assert main(["prune", str(tree_run), "--threshold", threshold, "--out", str(tmp_path),
                 "--quiet"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_threshold_that_removes_every_branch_is_refused(tmp_path, capsys):
    silent = cli_train(tmp_path, "lateral", "silent", TINY + ["model.lam=100"])
    assert _branch_usage(silent).max() == 0.0  # nothing ever fires at this λ
    out = tmp_path / "out"
    assert main(["prune", str(silent), "--threshold", "0.01", "--out", str(out),
                 "--quiet"]) == 2
    assert "removes every branch" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_run_without_a_tree_is_refused(tmp_path, capsys):
    flat = cli_train(tmp_path, "lateral", "flat", TINY + ["model.structure=all",
                                                          "model.n_units=8"])
    out = tmp_path / "out"
    assert main(["prune", str(flat), "--threshold", "0.1", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "flat is a 'lateral' run whose units are not on a tree" in err
    assert "train lateral" in err
    assert not out.exists() or not any(out.iterdir())


def test_bad_steps_and_a_missing_run_are_refused(tree_run, tmp_path, capsys):
    assert main(["prune", str(tree_run), "--threshold", "0.1", "--steps", "0",
                 "--out", str(tmp_path)]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["prune", str(tmp_path / "nope"), "--threshold", "0.1"]) == 2
    assert "no run folder" in capsys.readouterr().err
