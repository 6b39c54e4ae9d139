"""One trial of a sweep: an ordinary run, trained by the same code as `train`, then analysed.

`run_trial` is what a Ray worker calls; it knows nothing of Ray, so the benchmark's plain loop
calls the very same function.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch

# After a sweep is killed, its Ray workers notice within seconds that their node is gone and
# exit; until then one may still hold its trial's run lock.
WRITER_WAIT_S = 60.0
RESULT_TYPES = (int, float, bool)  # the numbers a table or plot can use


def run_trial(model: str, overrides: dict[str, Any], run_dir: Path | str, threads: int,
              command: str = "", analyze: bool = True, allow_shipped: bool = False
              ) -> dict[str, Any]:
    """Train one trial into `run_dir` (made if missing; resumed from its checkpoint if it is
    there, e.g. after the sweep was killed) with `threads` CPU threads, then analyse it.

    Returns {"state": completed|failed|stopped, "error", "result": the analysis' scalar
    values, "health", "elapsed_s", "train_s", "host"}. A trial's failure is returned, not
    raised: the sweep records it and goes on."""
    from ..presets import build_run_config
    from ..training.pipeline import execute_run
    from ..training.runs import CONFIG_FILE, WEIGHTS_FILE, RunWriter, create_run

    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    out: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        config = build_run_config(model, {**overrides, "train.threads": threads},
                                  command=command)
        resume = (run_dir / CONFIG_FILE).exists()
        if resume:
            wait_for_writer(run_dir)
        if not resume:
            from ..data import check_data

            check_data(config.data)
            create_run(config, run_dir.parent, run_dir.name, allow_shipped=allow_shipped)
        done = RunWriter(run_dir, allow_shipped=True).read_status().get("state")
        if resume and done == "completed" and (run_dir / WEIGHTS_FILE).exists():
            state = "completed"  # trained before the sweep was killed; only its record was lost
        else:
            state = execute_run(config, run_dir, resume=resume, allow_shipped=allow_shipped)
        out["train_s"] = time.perf_counter() - t0
        status = RunWriter(run_dir, allow_shipped=True).read_status()
        out["state"] = state
        out["health"] = (status.get("health") or {}).get("verdict")
        if state == "failed":
            out["error"] = str(status.get("error") or "training failed")
        elif state == "completed" and analyze:
            from ..analysis.cached import analyze_run

            analysis = analyze_run(run_dir, allow_shipped=allow_shipped)
            out["result"] = {k: v for k, v in analysis.items()
                             if isinstance(v, RESULT_TYPES)
                             and not (isinstance(v, float) and not math.isfinite(v))}
            if allow_shipped:  # a shipped run is final: no resume checkpoint in the repo
                (run_dir / "checkpoint.safetensors").unlink(missing_ok=True)
    except Exception as exc:  # e.g. the run folder cannot be made: this trial fails, not all
        out["state"] = "failed"
        out["error"] = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
    out["elapsed_s"] = time.perf_counter() - t0
    return out


def wait_for_writer(run_dir: Path, timeout: float = WRITER_WAIT_S) -> None:
    """Wait until no other process holds `run_dir`'s lock (RunError after `timeout`)."""
    from ..training.runs import RunError, RunLock

    deadline = time.monotonic() + timeout
    while True:
        try:
            with RunLock(run_dir):
                return
        except RunError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
