"""A sweep folder on disk: its definition, an append-only log of trial events, and the table.

    <runs>/.sweeps/<name>/
        sweep.json     the definition and every trial's settings (written once, atomically)
        trials.jsonl   one line per event: a trial started, completed (with its analysis) or
                       failed (with the message); appended and fsynced, so a killed sweep loses
                       no finished trial; the last line of a trial is its state
        trials.csv     the same table, one row per trial (rewritten atomically after each event)
        status.json    the sweep driver's state, pid and host
        sweep.log      the output of a sweep launched from the app

The trials themselves are ordinary run folders in the runs folder (`<name>-t000`, ...). The
sweeps live in a hidden folder of the runs folder so that run listings do not take them for runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..training.runs import (
    RunError,
    atomic_write_bytes,
    dumps_json,
    is_shipped,
    read_json,
    write_json_atomic,
)
from ..training.runs.listing import effective_state
from .spec import SweepSpec, Trial

FORMAT = "sparse-feature-lab/sweep"
FORMAT_VERSION = 1
SWEEPS_DIR = ".sweeps"
DEFINITION_FILE = "sweep.json"
EVENTS_FILE = "trials.jsonl"
TABLE_FILE = "trials.csv"
STATUS_FILE = "status.json"
LOG_FILE = "sweep.log"
FINISHED = ("completed", "failed")


def sweeps_dir(runs_dir: Path | str) -> Path:
    return Path(runs_dir) / SWEEPS_DIR


@dataclass(frozen=True)
class Sweep:
    """A sweep folder's definition, as read back."""

    path: Path
    name: str
    spec: SweepSpec
    trials: list[Trial]
    fixed: dict[str, Any]
    seed_keys: tuple[str, ...]
    runs_dir: Path
    created: str
    command: str

    @property
    def keys(self) -> list[str]:
        """The swept settings, in the order given."""
        keys: list[str] = []
        for t in self.trials:
            keys += [k for k in t.settings if k not in keys]
        return keys

    @property
    def shipped(self) -> bool:
        return is_shipped(self.path)


def create_sweep(root: Path | str, name: str, spec: SweepSpec, trials: list[Trial],
                 fixed: dict[str, Any], seed_keys: tuple[str, ...], runs_dir: Path | str,
                 command: str = "") -> Sweep:
    """Make the folder `root/name` with its definition. RunError when it exists (resume it)."""
    path = Path(root) / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        raise RunError(f"a sweep called {name!r} already exists in {root}; resume it with "
                       f"--resume {path} or pick another --name") from None
    except OSError as exc:
        raise RunError(f"cannot make the sweep folder {path}: {exc.strerror or exc}") from None
    definition = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
                  "spec": spec.to_dict(), "fixed": fixed, "seed_keys": list(seed_keys),
                  "runs_dir": str(Path(runs_dir).resolve()), "created": _now_iso(),
                  "command": command, "trials": [t.to_dict() for t in trials]}
    write_json_atomic(path / DEFINITION_FILE, definition)
    return read_sweep(path)


def read_sweep(path: Path | str) -> Sweep:
    """The definition in `path/sweep.json`; RunError naming the problem when it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"no sweep folder at {path}")
    d = read_json(path / DEFINITION_FILE, " (is this a sweep folder?)")
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise RunError(f"{path / DEFINITION_FILE} is not a sweep definition")
    if d.get("format_version", 0) > FORMAT_VERSION:
        raise RunError(f"{path} was written by a newer version (sweep format "
                       f"{d.get('format_version')}); update the code to open it")
    try:
        runs_dir = Path(d["runs_dir"])
        if not runs_dir.is_absolute():  # shipped sweeps name their runs folder relative to it
            runs_dir = (path / runs_dir).resolve()
        return Sweep(path=path, name=str(d["name"]), spec=SweepSpec.from_dict(d["spec"]),
                     trials=[Trial.from_dict(t) for t in d["trials"]], fixed=dict(d["fixed"]),
                     seed_keys=tuple(d["seed_keys"]), runs_dir=runs_dir,
                     created=str(d.get("created", "")), command=str(d.get("command", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{path / DEFINITION_FILE} is damaged: {exc!r}") from None


# --- events --------------------------------------------------------------------------------


def append_event(path: Path | str, record: dict[str, Any]) -> None:
    """One line, flushed and fsynced before returning: a finished trial survives a kill."""
    line = dumps_json({"time": _now_iso(), **record}, indent=None) + "\n"
    with open(Path(path) / EVENTS_FILE, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_events(path: Path | str) -> list[dict[str, Any]]:
    """Every event, oldest first. A line cut short by a kill (the last one) is skipped."""
    try:
        text = (Path(path) / EVENTS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("trial"), str):
            out.append(rec)
    return out


def latest_events(path: Path | str) -> dict[str, dict[str, Any]]:
    """trial id -> its newest event."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in read_events(path):
        latest[rec["trial"]] = rec
    return latest


def finished_ids(path: Path | str) -> set[str]:
    return {t for t, rec in latest_events(path).items() if rec.get("state") in FINISHED}


def trial_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """One row per trial: id, run, seed, state, the swept settings, then its results
    (analysis numbers, health, time) or its error. State 'pending' when it has not started;
    a trial last recorded as running while the sweep no longer runs was cut short with it:
    'stopped' when the sweep was stopped, else 'interrupted' (resumable either way)."""
    latest = latest_events(sweep.path)
    cut = None
    if any(rec.get("state") == "running" for rec in latest.values()):
        now = sweep_state(sweep.path)
        cut = None if now in ("running", "created") else (
            "stopped" if now == "stopped" else "interrupted")
    rows = []
    for t in sweep.trials:
        rec = latest.get(t.id, {})
        state = rec.get("state", "pending")
        if state == "running" and cut:
            state = cut
        row = {"trial": t.id, "run": t.run, "seed": t.seed, "state": state,
               **t.settings, "elapsed_s": rec.get("elapsed_s"), "health": rec.get("health"),
               "error": rec.get("error"), "host": rec.get("host"), "node": rec.get("node"),
               "pid": rec.get("pid"), "train_s": rec.get("train_s"),
               "dispatch_s": rec.get("dispatch_s"), "return_s": rec.get("return_s")}
        result = rec.get("result")
        if isinstance(result, dict):
            row.update({k: v for k, v in result.items() if k not in row})
        rows.append(row)
    return rows


def write_table(sweep: Sweep) -> None:
    """`trials.csv`, rewritten atomically from the event log."""
    rows = trial_rows(sweep)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    for r in rows:
        w.writerow({k: (json.dumps(v) if isinstance(v, list | dict) else v)
                    for k, v in r.items()})
    atomic_write_bytes(sweep.path / TABLE_FILE, buf.getvalue().encode("utf-8"))


# --- the driver's state --------------------------------------------------------------------


def update_status(path: Path | str, **changes: Any) -> dict[str, Any]:
    file = Path(path) / STATUS_FILE
    try:
        status = read_json(file) if file.exists() else {}
    except RunError:
        status = {}
    status = {**(status if isinstance(status, dict) else {}), **changes, "updated": _now_iso()}
    write_json_atomic(file, status)
    return status


def mark_running(path: Path | str, address: str | None) -> None:
    update_status(path, state="running", pid=os.getpid(), host=socket.gethostname(),
                  started=_now_iso(), finished=None, error=None, address=address)


def mark_ended(path: Path | str, state: str) -> None:
    """The driver is done with the sweep: `state` finished or stopped, stamped now."""
    update_status(path, state=state, finished=_now_iso())


def sweep_state(path: Path | str) -> str:
    """'running', 'finished', 'stopped', 'failed', 'interrupted' (its process is gone), or
    'created' (never started)."""
    file = Path(path) / STATUS_FILE
    try:
        status = read_json(file) if file.exists() else {}
    except RunError:
        status = {}
    if not isinstance(status, dict) or not status:
        return "created"
    return effective_state(status)


@dataclass(frozen=True)
class SweepInfo:
    path: Path
    name: str
    model: str
    state: str
    n_trials: int
    counts: dict[str, int]  # state -> trials in it
    shipped: bool
    created: str
    error: str | None = None


def list_sweeps(dirs: list[Path | str]) -> list[SweepInfo]:
    """Every sweep folder under `dirs` (runs folders; their `.sweeps`), newest first; a folder
    that cannot be read is listed as 'broken' with the reason. Never raises."""
    out: list[SweepInfo] = []
    for d in dirs:
        root = sweeps_dir(d)
        try:
            children = sorted(c for c in root.iterdir() if c.is_dir())
        except OSError:
            continue
        infos = []
        for c in children:
            try:
                s = read_sweep(c)
                counts: dict[str, int] = {}
                latest = latest_events(c)
                for t in s.trials:
                    st = latest.get(t.id, {}).get("state", "pending")
                    counts[st] = counts.get(st, 0) + 1
                infos.append(SweepInfo(c, s.name, s.spec.model, sweep_state(c), len(s.trials),
                                       counts, s.shipped, s.created))
            except Exception as exc:  # one bad folder must not hide the others
                infos.append(SweepInfo(c, c.name, "", "broken", 0, {}, is_shipped(c), "",
                                       str(exc)))
        infos.sort(key=lambda i: (i.created, i.name), reverse=True)
        out.extend(infos)
    return out


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


__all__ = ["DEFINITION_FILE", "EVENTS_FILE", "FINISHED", "LOG_FILE", "STATUS_FILE",
           "SWEEPS_DIR", "TABLE_FILE", "Sweep", "SweepInfo", "append_event", "create_sweep",
           "finished_ids", "latest_events", "list_sweeps", "mark_ended", "mark_running",
           "read_events", "read_sweep", "sweep_state", "sweeps_dir", "trial_rows",
           "update_status", "write_table"]
