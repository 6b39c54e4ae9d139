"""The Sweep page's helpers: listing sweeps, launching one as a background process, stopping it.

A sweep runs as its own process (`python -m sparse_models sweep --resume FOLDER`), which starts
Ray and its workers: the trials never run in the server, so its memory stays flat, and the sweep
goes on if the server restarts. The page reads the sweep folder (the definition, the trial log,
the trials' run folders); it never talks to Ray.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from sparse_models.sweep import (
    SweepInfo,
    SweepSpec,
    create_sweep,
    expand,
    list_sweeps,
    sweeps_dir,
)
from sparse_models.sweep.store import LOG_FILE, STATUS_FILE, sweep_state
from sparse_models.training.runs import REPO_ROOT, SHIPPED_DIR, default_runs_dir, read_json

# Settings a sweep sets itself, or that would make trials fight over the cores.
NOT_SWEPT = ("train.seed", "model.seed", "train.threads", "train.device")


@st.cache_resource(show_spinner=False)
def _launched() -> dict[str, subprocess.Popen]:
    """The sweep processes this server started, by folder: polled so they are reaped."""
    return {}


def sweeps() -> list[SweepInfo]:
    """The user's sweeps (newest first), then the shipped ones."""
    for proc in list(_launched().values()):
        proc.poll()  # reap a finished one, so its pid no longer looks alive
    return list_sweeps([default_runs_dir()]) + list_sweeps([SHIPPED_DIR])


def state_of(path: Path) -> str:
    """The sweep's state, with 'starting' for one this server has just launched whose process
    has not yet said it runs."""
    state = sweep_state(path)
    proc = _launched().get(str(path))
    if state in ("created", "stopped", "interrupted", "failed") and proc is not None \
            and proc.poll() is None:
        return "starting"
    return state


def sweepable_keys(sections: dict[str, dict[str, Any]]) -> list[str]:
    """`section.key` of every setting with a single value (number, yes/no, word or shape)."""
    out: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = prefix + k
            if isinstance(v, dict):
                walk(v, key + ".")
            elif key not in NOT_SWEPT and (isinstance(v, int | float | str | bool)
                                           or (isinstance(v, list) and len(v) <= 4)):
                out.append(key)

    for section in ("model", "train", "data"):
        walk(sections[section], section + ".")
    return out


def launch(spec: SweepSpec, name: str, max_concurrent: int, max_trials: int) -> Path:
    """Check the definition (ConfigError / RunError in words), make the sweep folder and start
    the sweep process in the background; returns the folder."""
    runs_dir = default_runs_dir().resolve()
    trials, fixed, keys = expand(spec, name, max_trials=max_trials)
    taken = [t.run for t in trials if (runs_dir / t.run).exists()]
    if taken:
        raise ValueError(f"runs named like this sweep's trials already exist (e.g. {taken[0]});"
                         f" pick another name")
    sweep = create_sweep(sweeps_dir(runs_dir), name, spec, trials, fixed, keys, runs_dir,
                         command="started from the Sweep page")
    start_process(sweep.path, max_concurrent)
    return sweep.path


def stop(path: Path) -> str:
    """Ask a running sweep to stop (SIGTERM: it cancels its trials, which keep their
    checkpoints, and records itself as stopped); returns what happened, in words."""
    proc = _launched().get(str(path))
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        return "Stopping the sweep; resume it to finish its trials."
    try:
        status = read_json(Path(path) / STATUS_FILE)
    except Exception:
        return "This sweep has no running process."
    pid = status.get("pid")
    if (sweep_state(path) == "running" and isinstance(pid, int)
            and status.get("host") == socket.gethostname()):
        try:
            os.kill(pid, signal.SIGTERM)
            return "Stopping the sweep; resume it to finish its trials."
        except OSError as exc:
            return f"Could not stop it: {exc}"
    return "This sweep is not running on this machine."


def start_process(path: Path, max_concurrent: int) -> None:
    """Start the sweep's process (again): it runs only the unfinished trials."""
    cmd = [sys.executable, "-m", "sparse_models", "sweep", "--resume", str(path),
           "--max-concurrent", str(int(max_concurrent))]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT),
                                                     os.environ.get("PYTHONPATH", "")) if p)}
    with open(Path(path) / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    _launched()[str(path)] = proc


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        text = (Path(path) / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-chars:]
