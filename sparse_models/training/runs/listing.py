"""Listing run folders cheaply (JSON files only), and telling a live run from an interrupted one."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoints import _check_safetensors_header
from .format import (
    SHIPPED_DIR,
    STATUS_FILE,
    WEIGHTS_FILE,
    RunError,
    default_runs_dir,
    is_shipped,
    read_json,
    read_run_config,
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def effective_state(status: dict[str, Any]) -> str:
    """The state in status.json, or 'interrupted' when the process that ran it is gone."""
    state = str(status.get("state", "unknown"))
    if state in ("running", "queued"):
        pid, host = status.get("pid"), status.get("host")
        if (isinstance(pid, int) and host == socket.gethostname() and pid != os.getpid()
                and not _pid_alive(pid)):
            return "interrupted"
    return state


@dataclass(frozen=True)
class RunInfo:
    path: Path
    name: str
    model: str  # "" when unknown (broken folder)
    state: str  # created/queued/running/completed/stopped/failed/interrupted/broken
    shipped: bool
    steps: int  # steps done
    created: str  # ISO time, "" when unknown
    total_steps: int = 0
    error: str | None = None  # why training failed, or why the folder is broken
    health: str = ""  # the verdict (healthy / warning / collapsed), "" when none was recorded
    health_reasons: tuple[str, ...] = ()  # why, in words
    summary: str = ""  # a few words on its settings (the model's `summarize_config`)


def list_runs(dirs: list[Path] | None = None) -> list[RunInfo]:
    """Every run folder in `dirs` (default: the runs folder, then the shipped examples).

    Cheap (reads only the JSON files) and never raises: a folder that cannot be read is
    listed with state 'broken' and the reason. Newest first within each folder.
    """
    roots = [Path(d) for d in dirs] if dirs is not None else [default_runs_dir(), SHIPPED_DIR]
    out: list[RunInfo] = []
    for root in roots:
        try:
            children = [c for c in root.iterdir() if c.is_dir() and not c.name.startswith(".")]
        except OSError:
            continue
        infos = [_run_info(c) for c in children]
        infos.sort(key=lambda r: (r.created, r.name), reverse=True)
        out.extend(infos)
    return out


def _run_info(path: Path) -> RunInfo:
    shipped = is_shipped(path)
    try:
        mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))
    except OSError:
        mtime = ""
    try:
        config = read_run_config(path)
        status_path = path / STATUS_FILE
        try:  # a damaged status costs the run its description, not its place in the list
            status = read_json(status_path) if status_path.exists() else {}
        except RunError:
            status = {}
        if not isinstance(status, dict):
            status = {}
        weights = path / WEIGHTS_FILE
        if weights.exists():
            _check_safetensors_header(weights)
        state = effective_state(status)
        if state == "unknown" and (path / WEIGHTS_FILE).exists():
            state = "completed"
        return RunInfo(path=path, name=path.name, model=config.model, state=state,
                       shipped=shipped, steps=_int(status.get("steps_done")),
                       created=str(status.get("created") or mtime),
                       total_steps=_int(status.get("total_steps"), config.train.steps),
                       error=status.get("error"), summary=_summary(config),
                       **_health(status))
    except Exception as exc:  # a listing must never fail because of one folder
        return RunInfo(path=path, name=path.name, model="", state="broken", shipped=shipped,
                       steps=0, created=mtime, error=str(exc))


def _summary(config: Any) -> str:
    try:
        return str(config.model_cls.summarize_config(config.model_config))
    except Exception:  # a few words for a list: never a reason to call the folder broken
        return ""


def _health(status: dict[str, Any]) -> dict[str, Any]:
    h = status.get("health")
    if not isinstance(h, dict) or h.get("verdict") not in ("healthy", "warning", "collapsed"):
        return {}
    reasons = tuple(r for r in h.get("reasons") or () if isinstance(r, str))
    return {"health": h["verdict"], "health_reasons": reasons}


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default
