"""Running a sweep's unfinished trials on Ray: a local Ray started for the sweep, or a cluster.

Each trial is one Ray task (`trial.run_trial`) that asks for as many CPUs as it trains with
threads, so Ray never puts more trials on a node than it has cores. The driver keeps at most
`max_concurrent` trials in flight and appends each one's start and end to the sweep folder as
it happens; a trial that fails (or whose worker dies) is recorded with its message and the
sweep goes on. Ray: Moritz et al., "Ray: a distributed framework for emerging AI
applications", OSDI 2018.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..training.runs import REPO_ROOT, RunError
from .store import (
    Sweep,
    append_event,
    finished_ids,
    mark_ended,
    mark_running,
    update_status,
    write_table,
)
from .trial import run_trial

OBJECT_STORE_BYTES = 80 * 2**20  # trial results are a few kB; Ray's minimum is 75 MiB
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class SweepError(Exception):
    """The sweep cannot run (Ray cannot start or be reached, storage not shared): in words."""


def local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def start_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to `address`, or start a small local Ray with `num_cpus` (default: the cores
    this process may use). Returns True when this call started it (so it must shut it down);
    a Ray already running in this process is used as it is."""
    import ray

    if ray.is_initialized():
        return False
    common: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR",
                              "log_to_driver": False, "configure_logging": True}
    if address:
        check_reachable(address)
    # ray.init puts in a SIGTERM handler of its own (sys.exit(15)); the caller's comes back after
    handler = signal.getsignal(signal.SIGTERM) if threading_is_main() else None
    try:
        if address:
            # The code goes with the job, so nodes need only the requirements installed.
            ray.init(address=address, runtime_env={"py_modules": [str(PACKAGE_DIR)]}, **common)
        else:
            # The workers find this code through PYTHONPATH, set in the environment Ray's
            # processes inherit rather than as a job runtime_env: a job with a runtime_env gets
            # workers of its own, started only when its first task arrives, whereas these are
            # the workers Ray starts (one a CPU) as it comes up.
            previous = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO_ROOT), previous or "") if p)
            try:
                ray.init(num_cpus=num_cpus or local_cpus(),
                         object_store_memory=OBJECT_STORE_BYTES, **common)
            finally:
                if previous is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = previous
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise SweepError(f"could not start or reach {where}: {exc}") from None
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)
    return True


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT that nothing answers on fails in seconds, in words (Ray itself would retry
    for minutes)."""
    if "://" in address or ":" not in address:
        return  # ray://, auto: Ray's own handling
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except ValueError:
        raise SweepError(f"--address must be HOST:PORT, got {address!r}") from None
    except OSError as exc:
        raise SweepError(f"cannot reach a Ray cluster at {address}: "
                         f"{exc.strerror or exc}; is `ray start --head --port {port}` running "
                         f"on {host}, and can this machine reach that port?") from None


def cluster_cpus() -> tuple[int, int]:
    """(CPUs in the whole cluster, CPUs of its smallest node)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    per_node = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes]
    per_node = [c for c in per_node if c > 0] or [1]
    return sum(per_node), min(per_node)


def threads_per_trial(max_concurrent: int, total_cpus: int, smallest_node: int) -> int:
    """Cores per trial: the cluster's cores shared among the trials in flight, at least 1 and
    no more than one node has (a trial runs on one node)."""
    return max(1, min(total_cpus // max(1, max_concurrent), smallest_node))


def check_shared_storage(runs_dir: Path) -> None:
    """On a cluster, every node must see the runs folder at the same path (the trials write
    their run folders there, and the app reads them from there). Writes a token file and asks
    one task on each node to read it back; SweepError naming the nodes that cannot."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    runs_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    marker = runs_dir / f".sweep-storage-check-{token}"
    marker.write_text(token)

    @ray.remote(num_cpus=0, max_retries=0)
    def sees(path: str, expected: str) -> tuple[str, str | None]:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            return socket.gethostname(), f"cannot read it ({exc.strerror or exc})"
        return socket.gethostname(), None if text == expected else "sees a different file"

    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(marker), token) for n in nodes]
        answers = ray.get(refs, timeout=120)
    except Exception as exc:
        raise SweepError(f"could not check that every node sees the runs folder {runs_dir}: "
                         f"{type(exc).__name__}: {exc}") from None
    finally:
        marker.unlink(missing_ok=True)
    bad = [(n.get("NodeManagerAddress", "?"), host, why)
           for n, (host, why) in zip(nodes, answers, strict=True) if why]
    if bad:
        listed = "; ".join(f"node {ip} ({host}) {why}" for ip, host, why in bad)
        raise SweepError(
            f"the runs folder {runs_dir} is not shared with every node of the cluster: "
            f"{listed}. Trials write their run folders there, so mount one shared folder "
            f"(e.g. NFS) at the same path on every node and pass it with --out (or "
            f"SPARSE_LAB_RUNS); see the README's Sweeps section")


def run_sweep(sweep: Sweep, max_concurrent: int | None = None, address: str | None = None,
              log: Callable[[str], None] | None = None, allow_shipped: bool = False,
              analyze: bool = True) -> dict[str, int]:
    """Run every unfinished trial of `sweep` (those with no completed/failed record); returns
    how many ended in each state. Starts a local Ray (shut down at the end) unless `address`
    is given or Ray is already running in this process. Ctrl-C / SIGTERM stop the trials in
    flight (their run folders keep their checkpoints) and record the sweep as stopped, also
    when they come while Ray is still starting."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    todo = [t for t in sweep.trials if t.id not in finished_ids(sweep.path)]
    skipped = len(sweep.trials) - len(todo)
    if skipped:
        say(f"{skipped} of {len(sweep.trials)} trials are already finished; running the "
            f"other {len(todo)}")
    counts: dict[str, int] = {}
    if not todo:
        write_table(sweep)
        mark_ended(sweep.path, "finished")
        return counts
    want = max_concurrent or (local_cpus() if not address else None)
    t_start = time.perf_counter()
    started_here = False
    previous = signal.getsignal(signal.SIGTERM)
    try:
        if threading_is_main():
            signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            import ray  # a second or more: inside, so that a Stop now is handled too

            started_here = start_ray(address, num_cpus=local_cpus())
        except (KeyboardInterrupt, SystemExit):  # SystemExit: ray.init's handler, while it runs
            if "ray" in sys.modules:
                sys.modules["ray"].shutdown()  # whatever part of a local Ray had come up
            mark_ended(sweep.path, "stopped")
            say(f"stopped before any trial ran; start it with: python -m sparse_models sweep "
                f"--resume {sweep.path}")
            raise KeyboardInterrupt from None
        total, smallest = cluster_cpus()
        if address:
            check_shared_storage(sweep.runs_dir)
        concurrent = want or total
        threads = threads_per_trial(concurrent, total, smallest)
        say(f"Ray {'joined' if address else 'started' if started_here else 'in use'} in {time.perf_counter() - t_start:.1f}"
            f" s: {total} CPUs; {concurrent} trials at a time, {threads} thread(s) each")
        mark_running(sweep.path, address)
        remote = ray.remote(max_retries=0)(trial_on_node).options(num_cpus=threads)
        in_flight: dict[Any, Any] = {}
        submitted: dict[str, float] = {}
        queue = list(todo)
        try:
            while queue or in_flight:
                while queue and len(in_flight) < concurrent:
                    t = queue.pop(0)
                    overrides = {**t.overrides(sweep.fixed, sweep.seed_keys),
                                 "train.threads": threads}
                    ref = remote.remote(sweep.spec.model, overrides,
                                        str(sweep.runs_dir / t.run), threads,
                                        command=train_command(sweep.spec.model, overrides,
                                                              t.run, allow_shipped),
                                        analyze=analyze, allow_shipped=allow_shipped)
                    in_flight[ref] = t
                    submitted[t.id] = time.time()
                    append_event(sweep.path, {"trial": t.id, "state": "running", "run": t.run})
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    t = in_flight.pop(ref)
                    try:
                        out = ray.get(ref)
                    except Exception as exc:  # the worker died, or Ray lost the task
                        out = {"state": "failed", "error": f"the trial's Ray task failed: "
                                                          f"{type(exc).__name__}: "
                                                          f"{str(exc).splitlines()[0][:300]}"}
                    if "entered_at" in out:  # where Ray's time goes: to start, and back
                        out["dispatch_s"] = out.pop("entered_at") - submitted[t.id]
                        out["return_s"] = time.time() - out.pop("left_at")
                    state = out.get("state", "failed")
                    if state == "stopped":  # never asked for here; keep it resumable
                        state = "running"
                    append_event(sweep.path, {"trial": t.id, "run": t.run, **out,
                                              "state": state})
                    write_table(sweep)
                    counts[state] = counts.get(state, 0) + 1
                    shown = ", ".join(f"{k}={v}" for k, v in t.settings.items())
                    what = (f"failed: {out.get('error')}" if state == "failed" else
                            f"{state} in {out.get('elapsed_s', 0):.1f} s")
                    say(f"{t.id} ({shown}, seed {t.seed}) {what}  [{t.run}]")
        except KeyboardInterrupt:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            mark_ended(sweep.path, "stopped")
            write_table(sweep)  # the trials in flight now read as stopped
            say(f"stopped; finish it with: python -m sparse_models sweep --resume {sweep.path}")
            raise
        mark_ended(sweep.path, "finished")
        write_table(sweep)
        return counts
    except SweepError as exc:
        update_status(sweep.path, state="failed", error=str(exc))
        raise
    finally:
        if threading_is_main():
            signal.signal(signal.SIGTERM, previous)
        if started_here:
            ray.shutdown()


def train_command(model: str, overrides: dict[str, Any], run: str, shipped: bool) -> str:
    """The single-run command that trains the same run as this trial (its config records it)."""
    import json
    import shlex

    words = ["train", model]
    for k, v in overrides.items():
        words += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    words += ["--name", run] + (["--shipped"] if shipped else [])
    return "python -m sparse_models " + shlex.join(words)


def trial_on_node(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`run_trial` in a Ray worker, recording which node ran it."""
    import ray

    entered = time.time()  # this module (and torch) is imported by now
    out = run_trial(*args, **kwargs)
    out["node"] = ray.get_runtime_context().get_node_id()
    out["entered_at"], out["left_at"] = entered, time.time()
    return out


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


__all__ = ["RunError", "SweepError", "check_shared_storage", "cluster_cpus", "local_cpus",
           "run_sweep", "start_ray", "threads_per_trial"]
