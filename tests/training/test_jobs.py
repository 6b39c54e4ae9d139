"""JobManager: queueing, stopping, failures that leave the manager working, live progress."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sparse_models.config import ConfigError
from sparse_models.data import DataConfig, DataError
from sparse_models.models.sparse_coding import SparseCoding
from sparse_models.training import trainer
from sparse_models.training.jobs import JobManager
from sparse_models.training.runs import (
    STATUS_FILE,
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    create_run,
    load_run,
)
from sparse_models.training.trainer import TrainConfig

DATA = DataConfig(source="gratings", n_patches=256, patch_size=8)
LONG = 1_000_000  # steps: a job that only ends when stopped


def config(steps: int = 10, **train) -> RunConfig:
    return RunConfig(model="sparse_coding", model_config={"n_units": 16, "n_iter": 5}, data=DATA,
                     train=TrainConfig(**{"steps": steps, "batch_size": 32, "log_every": 5,
                                          "snapshot_every": 5, "checkpoint_every": 0, **train}))


def disk_status(run_dir: Path) -> dict:
    return json.loads((run_dir / STATUS_FILE).read_text())


def wait_until(cond, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def manager(runs_dir):
    m = JobManager(runs_dir, max_concurrent=1)
    yield m
    m.shutdown(wait=True, timeout=10)


def test_a_job_runs_to_completion(manager, runs_dir):
    job = manager.submit(config(), name="first")
    final = manager.wait(job, timeout=30)
    assert final.state == "completed" and final.error is None
    assert final.step == final.total_steps == 10 and final.progress == 1.0
    assert final.run_dir == runs_dir / "first" and final.name == "first"
    assert final.model == "sparse_coding" and final.device == "cpu"
    assert disk_status(final.run_dir)["state"] == "completed"
    assert load_run(final.run_dir).filters().shape == (16, 1, 8, 8)


def test_second_job_waits_for_the_first_then_runs(manager):
    first = manager.submit(config(LONG), name="long")
    second = manager.submit(config(10), name="short")
    wait_until(lambda: manager.status(first).step > 0, what="the first job to train")
    assert manager.status(first).state == "running"
    queued = manager.status(second)
    assert queued.state == "queued" and queued.step == 0
    assert disk_status(queued.run_dir)["state"] == "queued"
    time.sleep(0.2)
    assert manager.status(second).state == "queued"  # still waiting while the first runs

    manager.stop(first)
    assert manager.wait(first, timeout=5).state == "stopped"
    done = manager.wait(second, timeout=30)
    assert done.state == "completed" and done.step == 10


def test_stop_is_honoured_within_a_second_and_leaves_a_resumable_run(manager):
    job = manager.submit(config(LONG, checkpoint_every=0), name="to-stop")
    wait_until(lambda: manager.status(job).step >= 10, what="some progress")
    t0 = time.monotonic()
    manager.stop(job)
    final = manager.wait(job, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert final.state == "stopped" and final.error is None
    on_disk = disk_status(final.run_dir)
    assert on_disk["state"] == "stopped" and on_disk["steps_done"] == final.step > 0

    more = config(final.step + 5)
    resumed = manager.wait(manager.submit(more, resume_dir=final.run_dir), timeout=30)
    assert resumed.state == "completed"
    assert disk_status(final.run_dir)["steps_done"] == final.step + 5


def test_a_queued_job_is_cancelled_by_stop(manager):
    first = manager.submit(config(LONG), name="long")
    second = manager.submit(config(10), name="never")
    status = manager.stop(second)
    assert status.state == "stopped"
    assert manager.wait(second, timeout=0.1).state == "stopped"
    manager.stop(first)
    manager.wait(first, timeout=5)
    time.sleep(0.1)
    st = manager.status(second)
    assert st.state == "stopped" and st.step == 0
    assert disk_status(st.run_dir)["state"] == "stopped"
    assert not (st.run_dir / WEIGHTS_FILE).exists()


def test_a_missing_image_folder_is_refused_before_a_run_is_made(manager, runs_dir, tmp_path):
    bad = replace(config(), data=DataConfig(source="folder", folder=str(tmp_path / "nowhere"),
                                            patch_size=8))
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        manager.submit(bad, name="bad")
    assert list(runs_dir.iterdir()) == [] and manager.jobs() == []


def test_a_failing_job_ends_failed_and_the_next_job_still_runs(manager, tmp_path):
    folder = tmp_path / "broken-images"
    folder.mkdir()
    (folder / "photo.png").write_bytes(b"not a png at all")  # there, but cannot be decoded
    bad = replace(config(), data=DataConfig(source="folder", folder=str(folder), patch_size=8))
    failing = manager.submit(bad, name="bad")
    good = manager.submit(config(), name="good")
    f = manager.wait(failing, timeout=30)
    assert f.state == "failed" and "photo.png" in f.error
    assert disk_status(f.run_dir)["state"] == "failed"
    assert manager.wait(good, timeout=30).state == "completed"


def test_a_diverging_job_ends_failed_with_the_reason(manager, monkeypatch):
    original = SparseCoding.loss

    def nan_loss(self, x, y=None):
        terms = original(self, x, y)
        terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(SparseCoding, "loss", nan_loss)
    job = manager.wait(manager.submit(config(), name="nan"), timeout=30)
    assert job.state == "failed" and "diverged at step 1" in job.error
    monkeypatch.undo()
    assert manager.wait(manager.submit(config(), name="after"), timeout=30).state == "completed"


def test_progress_eta_history_and_live_filters_are_reported(manager):
    job = manager.submit(config(LONG, log_every=2, snapshot_every=4))
    st = wait_until(lambda: (s := manager.status(job)).eta_s is not None and s.step >= 20 and s,
                    what="an ETA")
    assert 0 < st.progress < 1 and st.eta_s > 0 and st.elapsed_s > 0
    assert "loss" in st.metrics and st.metrics == {k: v for k, v in st.history[-1].items()
                                                   if k not in ("step", "elapsed_s")}
    steps = [h["step"] for h in st.history]
    assert steps == sorted(steps) and steps[0] == 2
    snap = manager.snapshot(job)
    assert snap is not None and snap.shape == (16, 1, 8, 8)
    st.history.clear()  # a copy: the manager's history is untouched
    assert manager.status(job).history
    manager.stop(job)
    manager.wait(job, timeout=5)


def test_jobs_are_listed_newest_first(manager):
    ids = [manager.submit(config(5), name=f"j{i}") for i in range(3)]
    for i in ids:
        manager.wait(i, timeout=30)
    assert [j.id for j in manager.jobs()] == ids[::-1]
    assert all(j.state == "completed" for j in manager.jobs())


def test_two_jobs_run_side_by_side_when_allowed(runs_dir):
    m = JobManager(runs_dir, max_concurrent=2)
    try:
        a, b = m.submit(config(LONG)), m.submit(config(LONG))
        wait_until(lambda: m.status(a).step > 0 and m.status(b).step > 0, what="both running")
        assert m.status(a).state == m.status(b).state == "running"
    finally:
        m.shutdown(wait=True, timeout=10)
    assert m.status(a).state == m.status(b).state == "stopped"


@pytest.mark.parametrize("bad, message", [
    ({"model": "no_such_model"}, "unknown model"),
    ({"model": "sparse_coding", "model_config": {"n_units": 0}}, "n_units"),
    ({"model": "sparse_coding", "model_config": {"n_unit": 3}}, "unknown key"),
])
def test_bad_configs_are_refused_before_anything_is_made(manager, runs_dir, bad, message):
    # A run config is validated once, when it is built: a bad one never reaches submit.
    with pytest.raises(ConfigError, match=message):
        manager.submit(RunConfig(**bad, data=DATA))
    assert list(runs_dir.iterdir()) == [] and manager.jobs() == []


def test_an_unavailable_device_is_refused_at_submit(manager, runs_dir, monkeypatch):
    monkeypatch.setattr(trainer.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        manager.submit(config(device="cuda"))
    assert list(runs_dir.iterdir()) == []


def test_init_from_is_checked_at_submit_and_used(manager, runs_dir):
    parent = manager.wait(manager.submit(config(), name="parent"), timeout=30)
    with pytest.raises(RunError, match="shape"):
        manager.submit(replace(config(), model_config={"n_units": 9, "n_iter": 5}),
                       init_from=parent.run_dir)
    with pytest.raises(RunError, match="not a run folder"):
        manager.submit(config(), init_from=runs_dir / "nope")
    child = manager.wait(manager.submit(config(), name="child", init_from=parent.run_dir),
                         timeout=30)
    assert child.state == "completed"
    assert load_run(child.run_dir).config.parent == str(parent.run_dir)


def test_resuming_a_run_twice_at_once_is_refused(manager, runs_dir):
    path = create_run(config(LONG), runs_dir, name="busy")
    job = manager.submit(None, resume_dir=path)
    with pytest.raises(RunError, match="being trained"):
        manager.submit(None, resume_dir=path)
    manager.stop(job)
    assert manager.wait(job, timeout=5).state == "stopped"
