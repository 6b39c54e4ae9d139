"""Sweeps: definitions checked like `train --set`, trials on a real local Ray, kill and resume,
failures recorded, a real two-node Ray cluster joined with --address, and a real node that
cannot see the runs folder (an empty folder mounted over it in its own mount table) refused.

One local Ray (2 CPUs) serves the in-process tests of this module; the kill test and the
cluster test run the CLI in subprocesses, as a user would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparse_models.cli import main as cli_main
from sparse_models.config import ConfigError
from sparse_models.sweep import SweepSpec, create_sweep, expand, read_sweep, trial_rows
from sparse_models.sweep.spec import parse_grid, parse_random, split_values
from sparse_models.sweep.store import read_events, sweep_state, sweeps_dir
from sparse_models.training.runs import REPO_ROOT, load_run

TINY = {"data.n_patches": 256, "train.batch_size": 32, "train.steps": 30,
        "model.group.map_shape": [6, 6], "model.group.size": 3, "train.snapshot_every": 10,
        "train.log_every": 5}
TINY_FLAGS = [w for k, v in TINY.items() for w in ("--set", f"{k}={json.dumps(v)}")]


# Everything that starts Ray runs on one worker of the two, in turn (tests/app/test_sweep_browser.py
# too): `--dist loadgroup` in pyproject.toml.
pytestmark = pytest.mark.xdist_group("ray")

def make_sweep(runs: Path, name: str, grid: dict, seeds: int = 1, fixed: dict | None = None,
               model: str = "topographic"):
    base = {k: v for k, v in TINY.items() if k not in grid}
    spec = SweepSpec(model=model, grid=grid, seeds=seeds, fixed={**base, **(fixed or {})})
    trials, fixed_c, keys = expand(spec, name)
    return create_sweep(sweeps_dir(runs), name, spec, trials, fixed_c, keys, runs)


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    from sparse_models.sweep.runner import start_ray

    started = start_ray(None, num_cpus=2)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


# --- definitions ---------------------------------------------------------------------------


def test_values_split_at_commas_outside_brackets() -> None:
    assert split_values("3,5") == ["3", "5"]
    assert split_values("[8,8],[12,12]") == ["[8,8]", "[12,12]"]
    assert parse_grid(["model.group.map_shape=[8,8],[12,12]", "lam=0.1,0.3"]) == {
        "model.group.map_shape": [[8, 8], [12, 12]], "lam": [0.1, 0.3]}


def test_grid_expands_to_the_cross_product_with_canonical_keys_and_seeds() -> None:
    spec = SweepSpec("topographic", grid={"group.size": [3, 5], "lam": [0.1, 0.2, 0.3]},
                     seeds=2, fixed={k: v for k, v in TINY.items() if k != "model.group.size"})
    trials, fixed, keys = expand(spec, "sw")
    assert len(trials) == 12
    assert set(trials[0].settings) == {"model.group.size", "model.lam"}
    assert keys == ("train.seed", "model.seed")
    assert sorted({(t.settings["model.group.size"], t.settings["model.lam"], t.seed)
                   for t in trials}) == sorted(
        (g, lam, s) for g in (3, 5) for lam in (0.1, 0.2, 0.3) for s in (0, 1))
    assert len({t.run for t in trials}) == 12 and all(t.run.startswith("sw-t") for t in trials)


def test_random_draws_are_reproducible_and_typed() -> None:
    spec = SweepSpec("topographic", random=parse_random(["lam=0.05:0.5", "group.size=3:5"]),
                     samples=6, fixed={k: v for k, v in TINY.items() if k != "model.group.size"})
    a, _, _ = expand(spec, "r")
    b, _, _ = expand(spec, "r")
    assert [t.settings for t in a] == [t.settings for t in b]
    assert all(0.05 <= t.settings["model.lam"] <= 0.5 for t in a)
    assert all(isinstance(t.settings["model.group.size"], int)
               and 3 <= t.settings["model.group.size"] <= 5 for t in a)


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "lamda=0.1,0.2"], "--grid lamda: unknown key 'lamda'"),
    ([], "the sweep is empty"),
    (["--grid", "lam="], "--grid lam= has an empty value"),
    (["--grid", "lam=0.1,abc"], "model.lam must be a number, got 'abc'"),
    (["--grid", "group.size=3,2.5"], "model.group.size must be an integer, got 2.5"),
    (["--grid", "lam=0.1,0.1"], "lists a value twice"),
    (["--grid", "lam=0.1,0.2", "--seeds", "2", "--set", "train.seed=3"],
     "train.seed is set by --seeds 2"),
    (["--random", "lam=0.1:0.5"], "--random needs --samples N"),
    (["--grid", "train.threads=1,2"], "train.threads is set by the sweep itself"),
    (["--random", "whitening=0:1", "--samples", "2"], "only numeric settings"),
    (["--grid", "lam=0.1,0.2,0.3", "--seeds", "3", "--max-trials", "8"],
     "this sweep has 9 trials, more than the limit of 8; pass --yes"),
])
def test_bad_definitions_are_refused_in_words(args: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["sweep", "topographic", *args, "--out", str(tmp_path), "--name", "bad"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err, err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / ".sweeps" / "bad").exists()  # nothing made


def test_an_unreachable_cluster_is_refused_in_seconds(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    code = cli_main(["sweep", "topographic", "--grid", "lam=0.1,0.2", "--out", str(tmp_path),
                     "--name", "far", "--address", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - t0 < 30
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert not (tmp_path / ".sweeps").exists()


def test_more_trials_than_the_limit_run_with_yes() -> None:
    spec = SweepSpec("topographic", grid={"lam": [0.1, 0.2, 0.3]}, seeds=3,
                     fixed={k: v for k, v in TINY.items()})
    with pytest.raises(ConfigError, match="9 trials"):
        expand(spec, "x", max_trials=8)
    assert len(expand(spec, "x", max_trials=8, confirmed=True)[0]) == 9


# --- on a local Ray -------------------------------------------------------------------------


def test_sweep_runs_end_to_end_on_two_workers(local_ray: None, tmp_path: Path) -> None:
    from sparse_models.sweep.runner import run_sweep

    sweep = make_sweep(tmp_path, "e2e", {"model.group.size": [3, 5]}, seeds=2)
    lines: list[str] = []
    counts = run_sweep(sweep, max_concurrent=2, log=lines.append)
    assert counts == {"completed": 4}
    rows = trial_rows(read_sweep(sweep.path))
    assert [r["state"] for r in rows] == ["completed"] * 4
    assert {r["pid"] for r in rows} and len({r["pid"] for r in rows}) == 2  # two workers
    for r in rows:
        run = load_run(tmp_path / r["run"])  # an ordinary run folder
        assert run.config.train.threads == 1  # 2 cores / 2 trials at a time
        assert run.config.model_config.group.size == r["model.group.size"]
        assert run.config.train.seed == r["seed"] and run.config.model_config.seed == r["seed"]
        assert 0 < r["explained_variance"] <= 1 and r["live_fraction"] is not None
        assert "pinwheel_density" in r
    # seeds differ, so the same point gives different maps
    ev = {(r["model.group.size"], r["seed"]): r["explained_variance"] for r in rows}
    assert ev[(3, 0)] != ev[(3, 1)]
    table = (sweep.path / "trials.csv").read_text().splitlines()
    assert len(table) == 5 and "pinwheel_density" in table[0]
    assert any("2 trials at a time, 1 thread(s) each" in line for line in lines)


def test_a_failing_trial_is_recorded_and_the_others_finish(local_ray: None,
                                                          tmp_path: Path) -> None:
    from sparse_models.sweep.runner import run_sweep

    sweep = make_sweep(tmp_path, "fail", {"train.lr": [0.01, 10.0]},
                       fixed={"train.optimizer": "sgd"})
    counts = run_sweep(sweep, max_concurrent=2, log=lambda _: None)
    assert counts == {"completed": 1, "failed": 1}
    rows = {r["train.lr"]: r for r in trial_rows(read_sweep(sweep.path))}
    assert rows[0.01]["state"] == "completed" and rows[0.01]["error"] is None
    assert rows[10.0]["state"] == "failed"
    assert "training diverged" in rows[10.0]["error"]
    # a rerun has nothing left to do: a failed trial is finished, with its message kept
    assert run_sweep(read_sweep(sweep.path), log=lambda _: None) == {}


def test_a_killed_sweep_resumes_without_rerunning_finished_trials(local_ray: None,
                                                                  tmp_path: Path) -> None:
    from sparse_models.sweep.runner import run_sweep

    cmd = [sys.executable, "-m", "sparse_models", "sweep", "topographic",
           "--grid", "lam=0.1,0.2,0.3", *TINY_FLAGS, "--set", "train.steps=200",
           "--max-concurrent", "1", "--out", str(tmp_path), "--name", "killed"]
    proc = subprocess.Popen(cmd, env=subprocess_env(), cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = tmp_path / ".sweeps" / "killed"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if any(e["state"] == "completed" for e in read_events(folder)):
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("the first trial did not finish in 120 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the CLI and its local Ray
        proc.wait()
    before = read_events(folder)
    done = {e["trial"] for e in before if e["state"] == "completed"}
    assert len(done) == 1 and len(before) < 6  # killed mid-way
    first = next(iter(done))
    sweep = read_sweep(folder)
    run = tmp_path / next(t.run for t in sweep.trials if t.id == first)
    weights_mtime = (run / "weights.safetensors").stat().st_mtime_ns

    counts = run_sweep(sweep, max_concurrent=2, log=lambda _: None)
    assert counts == {"completed": 2}
    after = read_events(folder)
    assert [e for e in after if e["trial"] == first] == [e for e in before if e["trial"] == first]
    assert (run / "weights.safetensors").stat().st_mtime_ns == weights_mtime
    assert [r["state"] for r in trial_rows(read_sweep(folder))] == ["completed"] * 3


@pytest.mark.parametrize("when", ["importing ray", "starting ray", "running trials"])
def test_a_stop_at_any_moment_records_the_sweep_as_stopped(when: str, tmp_path: Path) -> None:
    """The Sweep page's Stop (SIGTERM) lands while the sweep imports Ray, while ray.init runs
    (which puts in a SIGTERM handler of its own), or while trials run: each time the sweep
    exits 130, is recorded as stopped (resumable) and says how to go on."""
    cmd = [sys.executable, "-m", "sparse_models", "sweep", "topographic",
           "--grid", "lam=0.1,0.2", *TINY_FLAGS, "--set", "train.steps=3000",
           "--out", str(tmp_path), "--name", "early"]
    folder = tmp_path / ".sweeps" / "early"
    proc = subprocess.Popen(cmd, env=subprocess_env(), cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        for line in proc.stderr:  # the first line comes just before Ray is imported and started
            seen.append(line)
            if "trials; its folder is" in line:
                break
        if when == "running trials":
            deadline = time.monotonic() + 120
            while not any(e["state"] == "running" for e in read_events(folder)):
                assert time.monotonic() < deadline, "no trial started in 120 s"
                time.sleep(0.1)
        else:  # importing ray takes about a second here, ray.init about four more
            time.sleep(0.3 if when == "importing ray" else 2.5)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = "".join(seen) + (rest or "")
    assert proc.returncode == 130, text[-2000:]
    assert sweep_state(folder) == "stopped", text[-2000:]
    assert not any(e["state"] == "completed" for e in read_events(folder))
    assert f"--resume {folder}" in text
    # the trials it cut short read as stopped, on the page and in trials.csv, not as running
    states = [r["state"] for r in trial_rows(read_sweep(folder))]
    assert "running" not in states and ("stopped" in states) == (when == "running trials")
    if when == "running trials":
        assert "stopped" in (folder / "trials.csv").read_text()

def test_a_quick_real_bench_runs_both_ways(local_ray: None, tmp_path: Path) -> None:
    from sparse_models.bench_sweep import bench_sweep

    r = bench_sweep(quick=True, n_trials=2, runs_root=tmp_path)
    assert r["n_trials"] == 2 and len(r["worker_trial_s"]) == 2
    assert r["loop_s"] > 0 and r["sweep_s"] > 0
    assert r["sweep_s"] * 2 >= sum(r["worker_trial_s"])  # its wall covers its trials, 2 at a time
    assert r["speedup"] == r["loop_s"] / r["sweep_s"]
    assert len(r["plain_trial_s"]) == 2 and r["plain_s"] * 2 >= sum(r["plain_trial_s"])
    assert r["ceiling"] == r["loop_s"] / r["plain_s"]
    assert list(tmp_path.iterdir()) == []  # its runs are temporary


# --- a real Ray cluster on loopback ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_start(args: list[str]) -> list[str]:
    """`ray start` for a small test node on loopback (1 CPU), blocking until it is stopped."""
    ray_cli = Path(sys.executable).with_name("ray")
    return [str(ray_cli), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
            "--object-store-memory=80000000", "--disable-usage-stats", *args]


def _ray_node(args: list[str], env: dict[str, str], log: Path,
              hide: Path | None = None) -> subprocess.Popen:
    """A test node; with `hide`, started in its own mount table with an empty folder mounted
    over `hide`, as on a machine where that folder is not shared."""
    cmd = _ray_start(args)
    if hide is not None:
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               f"mount -t tmpfs none {hide} && exec {' '.join(cmd)}"]
    return subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_started(proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Until `ray start --block` says its node runs (it has joined the cluster by then)."""
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")[-1500:]
        assert time.monotonic() < deadline, "the Ray node did not start: " + log.read_text(
            errors="replace")[-1500:]
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):  # a test cluster: no grace
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_a_sweep_joins_a_real_two_node_cluster_with_address(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    env = subprocess_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep for them.
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    head = _ray_node(["--head", f"--port={port}", "--include-dashboard=false",
                      f"--temp-dir={ray_tmp}"], env, tmp_path / "head.log")
    nodes = [head]
    try:
        _wait_started(head, tmp_path / "head.log")
        worker = _ray_node([f"--address={address}"], env, tmp_path / "worker.log")
        nodes.append(worker)
        _wait_started(worker, tmp_path / "worker.log")  # registered with the head
        runs = tmp_path / "runs"
        out = subprocess.run([sys.executable, "-m", "sparse_models", "sweep", "topographic",
                              "--grid", "lam=0.1,0.3", *TINY_FLAGS, "--out", str(runs),
                              "--name", "cluster", "--address", address],
                             env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "Ray joined" in out.stderr and "2 trials at a time" in out.stderr
        rows = trial_rows(read_sweep(runs / ".sweeps" / "cluster"))
        assert [r["state"] for r in rows] == ["completed", "completed"]
        assert len({r["node"] for r in rows}) == 2  # one trial on each node (1 CPU each)
        for r in rows:
            assert load_run(runs / r["run"]).status.get("state") == "completed"
    finally:
        for p in reversed(nodes):
            _stop(p)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _private_mounts_work() -> bool:
    """Whether this process may give a child its own mount table (root's `unshare -m`)."""
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _private_mounts_work(),
                    reason="needs `unshare -m` (a private mount table) to hide a folder from a node")
def test_a_cluster_node_that_cannot_see_the_runs_folder_is_named_before_any_trial(
        tmp_path: Path) -> None:
    """A real one-node cluster whose node has an empty folder mounted over the runs folder (as
    a machine without the shared mount would): the sweep stops at its storage check, naming the
    node and what it saw, and no trial's run folder is made."""
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    env = subprocess_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    runs = tmp_path / "runs"
    runs.mkdir()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    log = tmp_path / "head.log"
    head = _ray_node(["--head", f"--port={port}", "--include-dashboard=false",
                      f"--temp-dir={ray_tmp}"], env, log, hide=runs)
    try:
        _wait_started(head, log)
        out = subprocess.run([sys.executable, "-m", "sparse_models", "sweep", "topographic",
                              "--grid", "lam=0.1,0.3", *TINY_FLAGS, "--out", str(runs),
                              "--name", "unshared", "--address", address],
                             env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
        assert out.returncode != 0, out.stderr[-3000:]
        said = " ".join(out.stderr.split())
        assert f"the runs folder {runs} is not shared with every node of the cluster" in said
        assert f"({socket.gethostname()}) cannot read it (No such file or directory)" in said
        assert "Traceback" not in out.stderr
        assert not list(runs.glob("unshared-t*")), "a trial ran without shared storage"
        assert not list(runs.glob(".sweep-storage-check-*")), "the check left its file behind"
    finally:
        _stop(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)
