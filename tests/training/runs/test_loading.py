"""Opening runs: weights are checked on the way in, and a what-if start takes its parent's
parameters only when they fit (`parent_parameters`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sparse_models.data import DataConfig
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import (
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    create_run,
    load_run,
    parent_parameters,
)
from sparse_models.training.trainer import TrainConfig

DATA = DataConfig(source="gratings", n_patches=128, patch_size=6)
TRAIN = TrainConfig(steps=4, batch_size=32, log_every=2, snapshot_every=0, checkpoint_every=0)


def topo(**group) -> RunConfig:
    return RunConfig(model="topographic", data=DATA, train=TRAIN,
                     model_config={"group": {"map_shape": [4, 4], "size": 3, **group}})


def trained(cfg: RunConfig, runs_dir: Path, name: str) -> Path:
    path = create_run(cfg, runs_dir, name=name)
    assert execute_run(cfg, path) == "completed"
    return path


def test_damaged_weights_are_refused_naming_the_file(runs_dir):
    path = trained(topo(), runs_dir, "r")
    state = load_file(path / WEIGHTS_FILE)
    state["D"][0, 0] = float("nan")
    save_file(state, str(path / WEIGHTS_FILE))
    with pytest.raises(RunError, match=r"weights\.safetensors: D holds NaN or infinite values"):
        load_run(path)


def test_parent_parameters_are_the_parents_trained_parameters(runs_dir):
    parent = trained(topo(), runs_dir, "parent")
    got = parent_parameters(replace(topo(), train=replace(TRAIN, lr=1e-4)), parent)
    model = load_run(parent).model
    assert set(got) == {k for k, _ in model.named_parameters()}  # parameters, not buffers
    for k, p in model.named_parameters():
        assert torch.equal(got[k], p.detach()), k


def test_a_what_if_may_change_the_pools_but_not_the_parameter_shapes(runs_dir):
    parent = trained(topo(), runs_dir, "parent")
    # Other pools (another pool buffer P) over the same 16 units: the parameters still fit.
    blocks = topo(kind="blocks", size=2)
    assert set(parent_parameters(blocks, parent)) == {"D", "M", "b", "gain"}
    bigger = topo(map_shape=[5, 5])
    with pytest.raises(RunError, match=r"weights\.safetensors: D has shape \(16, 36\) but "
                                       r"this config needs \(25, 36\)"):
        parent_parameters(bigger, parent)


def test_a_what_if_needs_a_run_of_the_same_model(runs_dir, tmp_path):
    parent = trained(topo(), runs_dir, "parent")
    other = RunConfig(model="sparse_coding", data=DATA, train=TRAIN,
                      model_config={"n_units": 16})
    with pytest.raises(RunError, match="cannot initialise a 'sparse_coding' model from parent: "
                                       "it is a 'topographic' run"):
        parent_parameters(other, parent)
    with pytest.raises(RunError, match="it is not a run folder"):
        parent_parameters(topo(), tmp_path / "nothing")
