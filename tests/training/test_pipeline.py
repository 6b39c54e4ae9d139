"""execute_run end to end: files written, stop + resume, crash + resume, init_from, failures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sparse_models.data import DataConfig
from sparse_models.models.sparse_coding import SparseCoding
from sparse_models.training import pipeline, trainer
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    SNAPSHOTS_FILE,
    STATUS_FILE,
    WEIGHTS_FILE,
    RunConfig,
    create_run,
    load_run,
)
from sparse_models.training.trainer import StepInfo, TrainConfig

DATA = DataConfig(source="gratings", n_patches=256, patch_size=8)


def config(steps: int = 20, model: str = "sparse_coding", model_config: dict | None = None,
           **train) -> RunConfig:
    if model_config is None:
        model_config = ({"n_units": 16, "n_iter": 5} if model == "sparse_coding" else
                        {"group": {"map_shape": [4, 4], "size": 3}})
    return RunConfig(model=model, model_config=model_config, data=DATA,
                     train=TrainConfig(**{"steps": steps, "batch_size": 32, "log_every": 5,
                                          "snapshot_every": 5, "checkpoint_every": 0, **train}))


def status(path: Path) -> dict:
    return json.loads((path / STATUS_FILE).read_text())


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / WEIGHTS_FILE)


def stop_after(n_polls: int):
    """A should_stop that says yes on its n-th call, i.e. after n-1 steps."""
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= n_polls

    return should_stop


@pytest.mark.parametrize("model", ["sparse_coding", "topographic"])
def test_a_complete_run_writes_every_file(runs_dir, model):
    cfg = config(model=model)
    path = create_run(cfg, runs_dir)
    progress: list[tuple[StepInfo, np.ndarray | None]] = []
    assert execute_run(cfg, path, on_progress=lambda i, f: progress.append((i, f))) == "completed"

    st = status(path)
    assert st["state"] == "completed" and st["error"] is None
    assert st["steps_done"] == st["total_steps"] == 20 and st["device"] == "cpu"
    assert st["elapsed_s"] > 0
    written = json.loads((path / CONFIG_FILE).read_text())
    assert written["model_config"]["input_shape"] == [8, 8]  # set from the data
    metrics = [json.loads(line) for line in (path / METRICS_FILE).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [5, 10, 15, 20]
    assert {"loss", "elapsed_s"} <= set(metrics[0])
    assert all("split" not in m for m in metrics)  # no held-out split: no evaluation lines
    run = load_run(path)
    steps, filters, kind = run.snapshots()
    assert steps.tolist() == [0, 5, 10, 15, 20] and kind == run.model.default_filter_kind()
    assert filters.shape == (5, 16, 1, 8, 8)
    # snapshots are stored in half precision (display only)
    np.testing.assert_allclose(filters[-1], run.filters(), rtol=2e-3, atol=1e-3)
    assert not np.array_equal(filters[0], filters[-1])  # it learned something
    assert (path / CHECKPOINT_FILE).exists()

    assert [i.step for i, _ in progress] == [0, 5, 10, 15, 20]
    sent = [f for _, f in progress if f is not None]
    assert sent and all(f.shape == (16, 1, 8, 8) for f in sent)
    np.testing.assert_allclose(progress[0][1], filters[0], rtol=2e-3, atol=1e-3)  # half precision


@pytest.mark.parametrize("noisy", [False, True])
def test_stop_then_resume_matches_an_uninterrupted_run(runs_dir, monkeypatch, noisy):
    if noisy:  # randomness inside training steps: the resumed run must continue the RNG
        original = SparseCoding.loss
        monkeypatch.setattr(SparseCoding, "loss",
                            lambda self, x, y=None: original(self, x + 0.1 * torch.randn_like(x)))
    cfg = config(steps=20, log_every=1)
    straight = create_run(cfg, runs_dir, name="straight")
    assert execute_run(cfg, straight) == "completed"

    path = create_run(cfg, runs_dir, name="interrupted")
    assert execute_run(cfg, path, should_stop=stop_after(10)) == "stopped"
    st = status(path)
    assert st["state"] == "stopped" and st["steps_done"] == 9
    assert load_run(path).weights_step == 9  # a stopped run can be opened and analysed

    assert execute_run(cfg, path, resume=True) == "completed"
    assert status(path)["steps_done"] == 20
    a, b = weights(straight), weights(path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = load_run(straight), load_run(path)
    drop_time = [{k: v for k, v in m.items() if k != "elapsed_s"} for m in ra.metrics()]
    assert drop_time == [{k: v for k, v in m.items() if k != "elapsed_s"} for m in rb.metrics()]
    np.testing.assert_array_equal(ra.snapshots()[1], rb.snapshots()[1])


def test_resume_after_a_crash_continues_from_the_last_checkpoint(runs_dir):
    cfg = config(steps=20, log_every=1, checkpoint_every=5)
    straight = create_run(cfg, runs_dir, name="straight")
    execute_run(cfg, straight)

    def crash_at_13() -> bool:
        crash_at_13.n += 1
        if crash_at_13.n == 13:
            raise RuntimeError("power cut")
        return False

    crash_at_13.n = 0
    path = create_run(cfg, runs_dir, name="crashed")
    assert execute_run(cfg, path, should_stop=crash_at_13) == "failed"
    st = status(path)
    assert st["state"] == "failed" and "power cut" in st["error"]
    assert st["steps_done"] == 10  # the last checkpoint
    assert not (path / WEIGHTS_FILE).exists()
    assert load_run(path).weights_step == 10  # readable from the checkpoint meanwhile

    assert execute_run(cfg, path, resume=True) == "completed"
    steps = [m["step"] for m in load_run(path).metrics()]
    assert steps == list(range(1, 21))  # lines after the checkpoint were dropped, not doubled
    a, b = weights(straight), weights(path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_more_steps_extends_a_finished_run(runs_dir):
    cfg = config(steps=10)
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    longer = replace(cfg, train=replace(cfg.train, steps=15))
    assert execute_run(longer, path, resume=True) == "completed"
    assert status(path)["steps_done"] == 15
    assert load_run(path).config.train.steps == 15
    assert [m["step"] for m in load_run(path).metrics()] == [5, 10, 15]


def test_init_from_starts_from_the_parents_weights(runs_dir):
    parent_cfg = config(steps=10)
    parent = create_run(parent_cfg, runs_dir, name="parent")
    execute_run(parent_cfg, parent)

    child_cfg = replace(config(steps=5, model_config={"n_units": 16, "n_iter": 5, "lam": 0.1}),
                        parent=str(parent))
    child = create_run(child_cfg, runs_dir, name="child")
    assert execute_run(child_cfg, child, init_from=parent) == "completed"
    first = load_run(child).snapshots()[1][0]
    np.testing.assert_allclose(first, load_run(parent).filters(), rtol=2e-3, atol=1e-3)  # half precision
    assert load_run(child).config.parent == str(parent)

    fresh = create_run(child_cfg, runs_dir, name="fresh")
    execute_run(child_cfg, fresh)
    assert not np.array_equal(load_run(fresh).snapshots()[1][0], first)


def test_init_from_with_other_shapes_fails_cleanly(runs_dir):
    parent_cfg = config(steps=5)
    parent = create_run(parent_cfg, runs_dir, name="parent")
    execute_run(parent_cfg, parent)
    bigger = config(steps=5, model_config={"n_units": 25, "n_iter": 5})
    child = create_run(bigger, runs_dir, name="child")
    assert execute_run(bigger, child, init_from=parent) == "failed"
    st = status(child)
    assert st["state"] == "failed" and "shape" in st["error"] and "(25, 64)" in st["error"]

    other_model = config(steps=5, model="topographic")
    child2 = create_run(other_model, runs_dir, name="child2")
    assert execute_run(other_model, child2, init_from=parent) == "failed"
    assert "'sparse_coding' run" in status(child2)["error"]


def test_divergence_ends_failed_with_the_reason(runs_dir, monkeypatch):
    original = SparseCoding.loss
    calls = []

    def nan_at_7(self, x, y=None):
        calls.append(1)
        terms = original(self, x, y)
        if len(calls) == 7:
            terms["reconstruction"] = terms["reconstruction"] * float("nan")
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(SparseCoding, "loss", nan_at_7)
    cfg = config(steps=20, checkpoint_every=5)
    path = create_run(cfg, runs_dir)
    assert execute_run(cfg, path) == "failed"
    st = status(path)
    assert "diverged at step 7" in st["error"] and "reconstruction" in st["error"]
    assert st["steps_done"] == 5 and not (path / WEIGHTS_FILE).exists()


def test_a_failure_keeps_the_files_from_before(runs_dir, monkeypatch):
    cfg = config(steps=10)
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    keep = {n: (path / n).read_bytes() for n in (WEIGHTS_FILE, CHECKPOINT_FILE, SNAPSHOTS_FILE)}

    def broken_train(*args, **kwargs):
        raise ValueError("something inside training broke")

    monkeypatch.setattr(pipeline, "train", broken_train)
    longer = replace(cfg, train=replace(cfg.train, steps=20))
    assert execute_run(longer, path, resume=True) == "failed"
    st = status(path)
    assert st["state"] == "failed"
    assert st["error"] == "ValueError: something inside training broke"
    assert "Traceback" in st["traceback"]
    assert {n: (path / n).read_bytes() for n in keep} == keep
    monkeypatch.undo()
    assert load_run(path).weights_step == 10


def test_bad_data_or_device_ends_failed_with_a_clear_message(runs_dir, tmp_path, monkeypatch):
    missing = tmp_path / "no-images-here"
    cfg = replace(config(), data=DataConfig(source="folder", folder=str(missing), patch_size=8))
    path = create_run(cfg, runs_dir)
    assert execute_run(cfg, path) == "failed"
    assert "no-images-here" in status(path)["error"]

    monkeypatch.setattr(trainer.torch.cuda, "is_available", lambda: False)
    gpu = config(device="cuda")
    path = create_run(gpu, runs_dir)
    assert execute_run(gpu, path) == "failed"
    assert "CUDA is not available" in status(path)["error"]


def test_snapshots_are_thinned_past_the_limit(runs_dir, monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_SNAPSHOTS", 4)
    cfg = config(steps=40, snapshot_every=5)
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    steps, filters, _ = load_run(path).snapshots()
    assert steps.tolist() == [0, 20, 40]
    assert filters.shape == (3, 16, 1, 8, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_run_on_cuda_loads_on_the_cpu(runs_dir):
    cfg = config(steps=10, device="cuda", checkpoint_every=5)
    path = create_run(cfg, runs_dir)
    assert execute_run(cfg, path, should_stop=stop_after(8)) == "stopped"
    assert execute_run(cfg, path, resume=True) == "completed"
    st = status(path)
    assert st["device"].startswith("cuda")
    run = load_run(path)
    assert next(run.model.parameters()).device.type == "cpu"
    assert run.filters().shape == (16, 1, 8, 8)


# --- evaluation on a held-out split -----------------------------------------------------------


HELD_OUT = DataConfig(source="gratings", n_patches=256, n_test=64, patch_size=8)


def test_a_held_out_split_is_evaluated_every_eval_every_steps_and_at_the_end(runs_dir):
    cfg = replace(config(steps=20, eval_every=8), data=HELD_OUT)
    path = create_run(cfg, runs_dir)
    assert execute_run(cfg, path) == "completed"
    lines = [json.loads(line) for line in (path / METRICS_FILE).read_text().splitlines()]
    test = [m for m in lines if m.get("split") == "test"]
    assert [m["step"] for m in test] == [8, 16, 20]  # every 8 steps, and once at the end
    assert [m["step"] for m in lines if "split" not in m] == [5, 10, 15, 20]  # training lines
    for m in test:
        assert {"loss", "reconstruction", "sparsity", "explained_variance", "elapsed_s"} <= set(m)
        assert all(np.isfinite(v) for k, v in m.items() if k not in ("split", "step"))
    # the last line is the final model on the held-out rows
    run = load_run(path)
    final = run.model.evaluate(run.dataset().x_test)
    for k, v in final.items():
        assert test[-1][k] == pytest.approx(v, rel=1e-4), k


def test_the_last_evaluation_is_not_repeated_when_it_falls_on_the_end(runs_dir):
    cfg = replace(config(steps=20, eval_every=10), data=HELD_OUT)
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    test = [m["step"] for m in load_run(path).metrics() if m.get("split") == "test"]
    assert test == [10, 20]


def test_eval_every_0_evaluates_only_at_the_end(runs_dir):
    cfg = replace(config(steps=10, eval_every=0), data=HELD_OUT)
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    assert [m["step"] for m in load_run(path).metrics() if m.get("split") == "test"] == [10]


def test_a_stopped_run_is_evaluated_where_it_stopped_and_a_resume_continues(runs_dir):
    cfg = replace(config(steps=20, eval_every=5), data=HELD_OUT)
    path = create_run(cfg, runs_dir)
    assert execute_run(cfg, path, should_stop=stop_after(8)) == "stopped"  # after 7 steps
    test = [m["step"] for m in load_run(path).metrics() if m.get("split") == "test"]
    assert test == [5, 7]
    assert execute_run(cfg, path, resume=True) == "completed"
    test = [m["step"] for m in load_run(path).metrics() if m.get("split") == "test"]
    # the evaluation of the step-7 weights stays (it is of the checkpoint the resume started
    # from); the resume then evaluates on schedule and at the end
    assert test == [5, 7, 10, 15, 20]


def test_without_a_held_out_split_nothing_is_evaluated(runs_dir):
    cfg = config(steps=10, eval_every=2)  # DATA has n_test = 0
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    metrics = load_run(path).metrics()
    assert [m["step"] for m in metrics] == [5, 10]
    assert not any("split" in m for m in metrics)


def test_digits_train_and_evaluate_on_their_held_out_images(runs_dir):
    cfg = RunConfig(model="sparse_coding", model_config={"n_units": 16, "n_iter": 5},
                    data=DataConfig("digits", n_test=200),
                    train=TrainConfig(steps=6, batch_size=64, log_every=3, eval_every=3,
                                      snapshot_every=0, checkpoint_every=0))
    path = create_run(cfg, runs_dir)
    assert execute_run(cfg, path) == "completed"
    test = [m for m in load_run(path).metrics() if m.get("split") == "test"]
    assert [m["step"] for m in test] == [3, 6]
    assert load_run(path).filters().shape == (16, 1, 8, 8)
