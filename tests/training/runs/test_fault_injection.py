"""kill -9 at random moments, inside checkpoint writes too: the run stays readable, resumes from
its last checkpoint, and ends with the same weights as a run that was never interrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sparse_models.training.runs import (
    CHECKPOINT_FILE,
    WEIGHTS_FILE,
    load_run,
    read_checkpoint,
    read_json,
    read_metrics,
    read_run_config,
    read_snapshots,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SETTINGS = ["data.source=gratings", "data.patch_size=8", "data.n_patches=512",
            "model.n_units=16", "model.n_iter=10", "train.steps=400", "train.batch_size=32",
            "train.checkpoint_every=20", "train.snapshot_every=20", "train.log_every=10",
            "train.threads=1"]
# The CLI, with every atomic write slowed down half-way (the temporary file is written, not yet
# renamed into place), so that a kill often lands inside a write.
DRIVER = textwrap.dedent(f"""
    import os, sys, time, types
    sys.path.insert(0, {str(REPO)!r})
    from sparse_models.training.runs import format as fmt
    def slow_replace(src, dst):
        time.sleep(0.15)  # the temporary file is complete; the rename has not happened
        os.replace(src, dst)
    fmt.os = types.SimpleNamespace(**{{k: getattr(os, k) for k in dir(os)
                                       if not k.startswith("__")}})
    fmt.os.replace = slow_replace
    from sparse_models.cli import main
    sys.exit(main(sys.argv[1:]))
""")



def _cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONHASHSEED": "0"})


def _all_readable(run: Path) -> None:
    read_run_config(run)
    status = read_json(run / "status.json")
    assert isinstance(status, dict)
    read_metrics(run)
    if (run / CHECKPOINT_FILE).exists():
        read_checkpoint(run)
    if (run / "snapshots.safetensors").exists():
        read_snapshots(run)
    if (run / WEIGHTS_FILE).exists():
        load_file(str(run / WEIGHTS_FILE))


def test_random_kills_never_damage_a_run_and_resuming_ends_where_it_would(tmp_path: Path) -> None:
    sets = [a for s in SETTINGS for a in ("--set", s)]
    reference = _cli(["train", "sparse_coding", "--out", str(tmp_path), "--name", "reference",
                      "--quiet", *sets])
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    rng = random.Random(0)
    run = tmp_path / "killed"
    proc = _cli(["train", "sparse_coding", "--out", str(tmp_path), "--name", "killed",
                 "--quiet", *sets])
    kills = mid_write = 0
    for _ in range(40):  # bounded: each round is one start (or resume) of the run
        time.sleep(rng.uniform(2.0, 4.5))  # torch's import takes ~2 s; training ~2 s more
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            mid_write += bool(list(run.glob(".*.tmp")))  # killed inside an atomic write
        elif proc.returncode == 0:
            break
        _all_readable(run)
        if kills >= 8:
            proc = _cli(["train", "sparse_coding", "--resume", str(run), "--quiet"])
            assert proc.wait(timeout=300) == 0, proc.stderr.read()
            break
        proc = _cli(["train", "sparse_coding", "--resume", str(run), "--quiet"])
    else:
        pytest.fail("the run never finished")
    assert kills >= 3, f"only {kills} kills landed; the test did not test much"
    print(f"{kills} kills, {mid_write} of them inside a file write")
    _all_readable(run)
    assert not list(run.glob(".*.tmp")), "temporary files were left behind"
    ours, theirs = load_file(str(run / WEIGHTS_FILE)), load_file(
        str(tmp_path / "reference" / WEIGHTS_FILE))
    assert torch.equal(ours["D"], theirs["D"]), "the resumed run ended somewhere else"
    steps = [r["step"] for r in read_metrics(run) if r.get("split") != "test"]
    assert steps == sorted(set(steps)), "metrics lines were repeated or out of order"
    assert load_run(run).weights_step == 400
