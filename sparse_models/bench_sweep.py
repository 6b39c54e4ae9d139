"""`python -m sparse_models bench sweep`: what running trials on Ray costs and gains, in one run.

The same 8 tiny trials (a small topographic map: 8 values of λ, each its own run, trained and
analysed by `sweep.trial.run_trial`, the code a sweep's worker runs) are run

(a) one after another in a plain loop in this process, one CPU thread each, and
(b) as a sweep on a local Ray with 2 workers (2 trials at a time, one thread each), and
(c) as the reference for what 2 cores give two processes here: 2 plain Python processes (no
    Ray), each importing torch and this package as a Ray worker must, then running its half of
    the trials one after another.

Printed: both wall times; Ray's start-up (paid once per sweep, shown apart); the per-trial
overhead of (b), that is (wall × workers − the trials' own time inside the workers) / trials,
which counts the scheduling, each worker's start-up and first import of torch, result passing,
the trial log's writes and any slot left idle at the end (a worker's first trial's wait and the
later ones' are printed apart); and the speed-up (a) / (b), with and without
Ray's start-up. Targets: overhead ≤ 1 s per trial, speed-up ≥ 1.6× on 2 cores. The speed-up
(a) / (c) is the machine's own ceiling for two processes in the same run (shared caches, memory
bandwidth and a virtual machine's neighbours all take their share), and (a) / (b) is printed
as a share of it. Timings depend on what else the machine runs: the load average is printed
before and after.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {"overhead_s": 1.0, "speedup": 1.6}
N_TRIALS = 8
WORKERS = 2
TINY = {"data.n_patches": 2000, "train.batch_size": 64, "train.steps": 4000,
        "model.group.map_shape": [8, 8], "model.group.size": 3, "train.snapshot_every": 100,
        "train.log_every": 10}
QUICK = {**TINY, "train.steps": 30, "data.n_patches": 256}
LAMBDAS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run_in_turn(root: Path, fixed: dict[str, Any], jobs: list[tuple[int, float]]) -> list[float]:
    """Trials (i, λ) one after another in this process, one thread each (trial i is λ with seed
    i, in `root`/tNNN); the trials' own times. (a) and each process of (c) run this."""
    from .sweep.trial import run_trial

    times = []
    for i, lam in jobs:
        out = run_trial("topographic", {**fixed, "model.lam": lam, "train.seed": i},
                        root / f"t{i:03d}", threads=1)
        if out["state"] != "completed":
            raise RuntimeError(f"a trial of the bench failed: {out.get('error')}")
        times.append(out["elapsed_s"])
    return times


def plain_worker(root: str, fixed_json: str, jobs_json: str) -> None:
    """(c)'s process: its share of the trials, one after another; prints their times (JSON)."""
    print(json.dumps(run_in_turn(Path(root), json.loads(fixed_json), json.loads(jobs_json))),
          flush=True)


def plain_processes(root: Path, fixed: dict[str, Any], lams: list[float],
                    workers: int = WORKERS) -> tuple[float, list[float]]:
    """(c): the trials split among `workers` fresh Python processes (trial i to process
    i mod workers), one thread each; returns (wall from their launch to the last one's end,
    the trials' own times)."""
    from .training.runs import REPO_ROOT

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT),
                                                     os.environ.get("PYTHONPATH")) if p)}
    code = "import sys; from sparse_models.bench_sweep import plain_worker; plain_worker(*sys.argv[1:])"
    t0 = time.perf_counter()
    procs = [subprocess.Popen(
        [sys.executable, "-c", code, str(root), json.dumps(fixed),
         json.dumps([[i, lam] for i, lam in enumerate(lams) if i % workers == k])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(workers)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"a plain reference process failed: {err.strip()[-500:]}")
    return wall, [t for out, _ in outs for t in json.loads(out.strip().splitlines()[-1])]


def bench_sweep(quick: bool = False, n_trials: int = N_TRIALS,
                runs_root: Path | None = None) -> dict[str, Any]:
    """Run the trials both ways; returns the figures (seconds) and the load averages."""
    import ray
    import torch

    from .sweep import SweepSpec, create_sweep, expand, read_sweep, trial_rows
    from .sweep.runner import run_sweep, start_ray
    from .sweep.store import sweeps_dir

    fixed = QUICK if quick else TINY
    lams = (LAMBDAS * math.ceil(n_trials / len(LAMBDAS)))[:n_trials]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-", dir=runs_root) as tmp:
        root = Path(tmp)
        load_before = _load()
        # (a) the plain loop
        threads_before = torch.get_num_threads()
        t0 = time.perf_counter()
        try:
            loop_times = run_in_turn(root / "loop", fixed, list(enumerate(lams)))
            loop_s = time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads_before)
        # (b) the same trials as a sweep on Ray
        spec = SweepSpec("topographic", grid={"model.lam": sorted(set(lams))}, fixed=fixed)
        trials, fixed_c, keys = expand(spec, "bench", max_trials=None)
        # the same seeds as the loop: trial i is λ_i with seed i
        trials = [t.__class__(id=t.id, settings=t.settings, seed=i, run=t.run)
                  for i, t in enumerate(trials)]
        runs = root / "sweep"
        sweep = create_sweep(sweeps_dir(runs), "bench", spec, trials, fixed_c,
                             ("train.seed",), runs)
        t0 = time.perf_counter()
        started = start_ray(None, num_cpus=WORKERS)
        ray_start_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            counts = run_sweep(read_sweep(sweep.path), max_concurrent=WORKERS,
                               log=lambda _: None)
            sweep_s = time.perf_counter() - t0
        finally:
            if started:
                ray.shutdown()
        rows = trial_rows(read_sweep(sweep.path))
        if counts.get("completed", 0) != len(trials):
            raise RuntimeError(f"sweep trials did not all complete: {counts}; "
                               f"{[r.get('error') for r in rows if r.get('error')]}")
        # (c) the reference: the same trials in plain processes, after Ray has gone
        plain_s, plain_trials = plain_processes(root / "plain", fixed, lams)
        in_worker = [float(r["elapsed_s"]) for r in rows]
        first, later, seen = [], [], set()
        for r in sorted(rows, key=lambda r: r["trial"]):
            (later if r["pid"] in seen else first).append(float(r["dispatch_s"]))
            seen.add(r["pid"])
        returns = [float(r["return_s"]) for r in rows]
    overhead = (sweep_s * WORKERS - sum(in_worker)) / len(in_worker)
    return {"n_trials": len(lams), "workers": WORKERS, "loop_s": loop_s, "sweep_s": sweep_s,
            "ray_start_s": ray_start_s, "loop_trial_s": loop_times, "worker_trial_s": in_worker,
            "overhead_s": overhead, "speedup": loop_s / sweep_s,
            "first_dispatch_s": first, "later_dispatch_s": later, "return_s": returns,
            "speedup_with_start": loop_s / (sweep_s + ray_start_s),
            "plain_s": plain_s, "plain_trial_s": plain_trials, "ceiling": loop_s / plain_s,
            "load_before": load_before, "load_after": _load(), "quick": quick,
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count()}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def verdicts(r: dict[str, Any]) -> dict[str, bool]:
    def ok(v: Any, good: Any) -> bool:
        return isinstance(v, int | float) and math.isfinite(v) and good(v)

    return {"overhead_s": ok(r.get("overhead_s"), lambda v: v <= TARGETS["overhead_s"]),
            "speedup": ok(r.get("speedup"), lambda v: v >= TARGETS["speedup"])}


def format_sweep_bench(r: dict[str, Any]) -> list[str]:
    v = verdicts(r)

    def mark(ok: bool) -> str:
        return "✔" if ok else "✘"

    n = r["n_trials"]
    lines = [f"Sweep benchmark: {n} tiny topographic trials{' (quick)' if r['quick'] else ''}, "
             f"{r['cores']} cores, load average {r['load_before']} before",
             f"  (a) plain loop, one after another       {r['loop_s']:7.1f} s  "
             f"(mean {sum(r['loop_trial_s']) / n:.2f} s per trial)",
             f"  (b) sweep on Ray, {r['workers']} workers              {r['sweep_s']:7.1f} s  "
             f"(mean {sum(r['worker_trial_s']) / n:.2f} s per trial inside a worker)",
             f"      Ray start-up, once per sweep         {r['ray_start_s']:7.1f} s",
             f"  Ray overhead per trial                   {r['overhead_s']:7.2f} s  "
             f"{mark(v['overhead_s'])} target ≤ {TARGETS['overhead_s']:g} s",
             f"    of which: a worker's first trial waits {_mean(r['first_dispatch_s']):5.2f} s to "
             f"start (the worker's start-up and its import of torch; {len(r['first_dispatch_s'])}"
             f" workers), later trials {_mean(r['later_dispatch_s']) * 1000:.0f} ms; results "
             f"come back in {_mean(r['return_s']) * 1000:.0f} ms",
             f"  speed-up (a) / (b)                       {r['speedup']:7.2f} ×  "
             f"{mark(v['speedup'])} target ≥ {TARGETS['speedup']:g} ×",
             f"  speed-up counting Ray's start-up         {r['speedup_with_start']:7.2f} ×",
             f"  (c) reference: {r['workers']} plain processes, no Ray {r['plain_s']:7.1f} s  "
             f"(mean {_mean(r['plain_trial_s']):.2f} s per trial; each imports torch as a "
             f"worker does)",
             f"      the machine's ceiling (a) / (c)      {r['ceiling']:7.2f} ×; the sweep gets "
             f"{r['speedup'] / r['ceiling']:.0%} of it",
             f"  load average after: {r['load_after']}",
             f"targets met: {sum(v.values())} of {len(v)}"]
    return lines


def run_sweep_bench(quick: bool = False) -> dict[str, Any]:
    r = bench_sweep(quick=quick)
    print("\n".join(format_sweep_bench(r)), flush=True)
    return r
