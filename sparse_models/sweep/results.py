"""A sweep's results as numbers: which columns are settings or results, mean ± s.d. over seeds,
and how far a running trial has got. Plain Python and numpy; the page only draws these."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..training.runs import METRICS_FILE, STATUS_FILE, read_json

# Columns of `store.trial_rows` that describe the trial rather than measure the run.
BOOKKEEPING = ("trial", "run", "seed", "state", "health", "error", "host", "node", "pid",
               "map_rows", "map_cols", "map_periodic", "smooth_sigma", "n_samples",
               "sparsity_samples", "threshold", "n_units", "n_filters", "n_pools",
               "dispatch_s", "return_s")


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def result_columns(rows: list[dict[str, Any]], settings: list[str]) -> list[str]:
    """The numeric results some completed trial has, in first-seen order (elapsed time last)."""
    out: list[str] = []
    for r in rows:
        if r.get("state") != "completed":
            continue
        for k, v in r.items():
            if k in settings or k in BOOKKEEPING or k in out or _number(v) is None:
                continue
            out.append(k)
    timing = [k for k in ("elapsed_s", "train_s") if k in out]
    return [k for k in out if k not in timing] + timing


def mean_sd_over_seeds(rows: list[dict[str, Any]], x: str, y: str,
                       by: str | None = None) -> list[dict[str, Any]]:
    """Completed trials grouped by (`by` value, `x` value) — the seeds, and any other swept
    setting, pooled — with y's mean, sample s.d. (0 for one trial) and count, sorted by x.
    Values that are not numbers are grouped by their text."""
    groups: dict[tuple[str, str], list[float]] = {}
    keys: dict[tuple[str, str], tuple[Any, Any]] = {}
    for r in rows:
        if r.get("state") != "completed" or _number(r.get(y)) is None:
            continue
        g = (json.dumps(r.get(by)) if by else "", json.dumps(r.get(x)))
        groups.setdefault(g, []).append(float(r[y]))
        keys[g] = (r.get(by) if by else None, r.get(x))
    out = []
    for g, ys in groups.items():
        a = np.asarray(ys)
        out.append({"group": keys[g][0], "x": keys[g][1], "mean": float(a.mean()),
                    "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)})

    def order(p: dict[str, Any]) -> tuple:
        xv = _number(p["x"])
        gv = _number(p["group"])
        return (gv is None, gv if gv is not None else str(p["group"]),
                xv is None, xv if xv is not None else str(p["x"]))

    return sorted(out, key=order)


def trial_progress(run_dir: Path | str) -> tuple[int, int]:
    """(steps done, total steps) of a run being trained, from the end of its metrics file
    (written every log step) and its status; (0, 0) when neither can be read."""
    run_dir = Path(run_dir)
    total = 0
    try:
        status = read_json(run_dir / STATUS_FILE)
        total = int(status.get("total_steps") or 0)
    except Exception:
        pass
    step = 0
    try:
        with open(run_dir / METRICS_FILE, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", errors="ignore").splitlines()
        for line in reversed(tail):
            try:
                step = int(json.loads(line).get("step", 0))
                break
            except (ValueError, AttributeError):
                continue
    except OSError:
        pass
    return step, total
