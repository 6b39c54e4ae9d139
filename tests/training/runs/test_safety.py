"""Nothing the user made is damaged by a resume, a second writer, or a crash mid-write."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sparse_models.cli import main as cli_main
from sparse_models.data import DataConfig
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import (
    CHECKPOINT_FILE,
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    RunLock,
    create_run,
    load_run,
)
from sparse_models.training.trainer import TrainConfig

DATA = DataConfig(source="gratings", n_patches=256, patch_size=8)
REPO = Path(__file__).resolve().parents[3]


def config(steps: int = 20, **train) -> RunConfig:
    return RunConfig(model="sparse_coding", model_config={"n_units": 16, "n_iter": 5}, data=DATA,
                     train=TrainConfig(steps=steps, batch_size=32, log_every=5, snapshot_every=5,
                                       checkpoint_every=10, threads=1, **train))


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def finished(runs_dir: Path, name: str = "done") -> Path:
    path = create_run(config(), runs_dir, name=name)
    assert execute_run(config(), path) == "completed"
    return path


def test_resuming_from_a_nan_checkpoint_changes_no_file(runs_dir: Path) -> None:
    path = finished(runs_dir)
    # Keep a checkpoint whose metadata is valid but whose weights are NaN.
    ckpt = path / CHECKPOINT_FILE
    if not ckpt.exists():  # the pipeline writes one at the end of every run
        pytest.fail("a finished run has no checkpoint to damage")
    from safetensors import safe_open

    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["model.D"] = torch.full_like(tensors["model.D"], float("nan"))
    save_file(tensors, str(ckpt), metadata=meta)
    before = hashes(path)
    with pytest.raises(RunError, match="NaN"):
        execute_run(config(), path, resume=True)
    assert hashes(path) == before  # weights, status, metrics: all as they were
    assert torch.isfinite(load_file(str(path / WEIGHTS_FILE))["D"]).all()


def test_resuming_from_a_corrupt_checkpoint_keeps_the_run_healthy(runs_dir: Path) -> None:
    path = finished(runs_dir)
    (path / CHECKPOINT_FILE).write_bytes(b"\x00" * 100)
    before = hashes(path)
    assert cli_main(["train", "sparse_coding", "--resume", str(path)]) == 2
    assert hashes(path) == before
    assert json.loads((path / "status.json").read_text())["state"] == "completed"


def test_a_second_writer_is_refused_with_a_clear_message(runs_dir: Path) -> None:
    path = create_run(config(), runs_dir, name="busy")
    with RunLock(path):
        before = hashes(path)
        with pytest.raises(RunError, match="being trained by another writer"):
            execute_run(config(), path)
        assert hashes(path) == before


def test_the_lock_is_dropped_when_its_process_is_killed(runs_dir: Path) -> None:
    path = create_run(config(), runs_dir, name="killed")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(REPO)!r})
            from sparse_models.training.runs import RunLock
            RunLock({str(path)!r}).acquire()
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match=f"process {holder.pid}"):
            RunLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunLock(path).acquire().release()  # kill -9 left nothing held


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(
        runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = create_run(config(), runs_dir, name="early")  # never trained: no checkpoint
    assert cli_main(["train", "sparse_coding", "--resume", str(path), "--quiet"]) == 0
    assert "starting it over" in capsys.readouterr().err
    assert load_run(path).weights_step == 20


def test_an_orphaned_temporary_file_is_removed_at_the_next_open(runs_dir: Path) -> None:
    path = create_run(config(), runs_dir, name="orphan")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    orphan = path / f".checkpoint.safetensors.{dead}-12345.tmp"
    orphan.write_bytes(b"half a checkpoint")
    mine = path / f".status.json.{os.getpid()}-1.tmp"  # a write of this process: left alone
    mine.write_bytes(b"{}")
    assert execute_run(config(), path) == "completed"
    assert not orphan.exists() and mine.exists()
