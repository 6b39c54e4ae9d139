"""Command line: train, analyse, list and benchmark without the browser.

    python -m sparse_models train topographic --set lam=0.3 --set group.size=5
    python -m sparse_models train drsae --set n_iter=2 --set train.steps=1200
    python -m sparse_models train lista --set model.teacher=runs/sparse_coding-20261201-090000
    python -m sparse_models analyze runs/topographic-20261122-101500 --json
    python -m sparse_models prune runs/lateral-20261130-170000 --threshold 0.02 --steps 200
    python -m sparse_models list
    python -m sparse_models bench
    python -m sparse_models bench pinwheels
    python -m sparse_models bench tree
    python -m sparse_models bench drsae
    python -m sparse_models bench conv
    python -m sparse_models sweep topographic --grid group.size=3,5 --grid lam=0.1,0.3 --seeds 2
    python -m sparse_models sweep --resume runs/.sweeps/topographic-sweep-20261130-220000

Bad input (unknown model or key, bad value, unreadable run) prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .config import ConfigError

EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from .data import DataError
    from .sweep.runner import SweepError
    from .training.runs import RunError

    return (ConfigError, DataError, RunError, CLIError, SweepError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args, argv) or 0)
    except KeyboardInterrupt:  # before the clause below, which imports modules (and torch)
        raise
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, RecursionError, OverflowError) as exc:  # absurd sizes that got through
        print(f"error: the settings ask for more than this machine can do "
              f"({type(exc).__name__}: {str(exc)[:200]})", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sparse_models", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train a model and save the run")
    t.add_argument("model", help="model name (see `list --models`)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. lam=0.3, model.group.size=5, train.steps=500")
    t.add_argument("--out", type=Path, default=None, help="runs folder (default ./runs)")
    t.add_argument("--name", default=None, help="run name (default MODEL-DATE-TIME)")
    t.add_argument("--init-from", type=Path, default=None,
                   help="start from this run's weights (what-if retraining)")
    t.add_argument("--resume", type=Path, default=None,
                   help="continue a stopped run from its last checkpoint")
    t.add_argument("--show", action="store_true", help="print the resolved settings and exit")
    t.add_argument("--shipped", action="store_true",
                   help="write into checkpoints/ (maintainers making shipped runs)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    a = sub.add_parser("analyze", help="print a run's map, sparsity and reconstruction numbers")
    a.add_argument("run", type=Path)
    a.add_argument("--json", action="store_true", help="print JSON")
    a.add_argument("--samples", type=int, default=5000, help="patches to analyse (default 5000)")
    a.add_argument("--smooth", type=float, default=None, help="map smoothing σ for pinwheels")
    a.add_argument("--shipped", action="store_true",
                   help="a shipped run: store the analysis in its folder (maintainers refreshing "
                        "checkpoints/ after the analysis changed)")
    a.set_defaults(func=cmd_analyze)

    pr = sub.add_parser("prune", help="prune a tree model's rarely used branches and train on "
                                      "(a new run; the old one is left as it is)")
    pr.add_argument("run", type=Path, help="a finished run of a tree-structured lateral model")
    pr.add_argument("--threshold", type=float, required=True,
                    help="remove every branch (a unit and its subtree) active on fewer than "
                         "this share of the run's training inputs, between 0 and 1")
    pr.add_argument("--name", default=None, help="new run's name (default RUN-pruned)")
    pr.add_argument("--steps", type=int, default=None,
                    help="training steps after pruning (default: the run's own steps)")
    pr.add_argument("--out", type=Path, default=None, help="runs folder (default ./runs)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_prune)

    ls = sub.add_parser("list", help="list runs (shipped and yours) or models")
    ls.add_argument("--models", action="store_true", help="list the models instead")
    ls.add_argument("--runs-dir", type=Path, default=None)
    ls.set_defaults(func=cmd_list)

    sw = sub.add_parser("sweep", help="many runs over a grid of settings and seeds, on Ray "
                                      "(local, or a cluster with --address)")
    sw.add_argument("model", nargs="?", default=None, help="model name (not with --resume)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="a setting and its values, e.g. group.size=3,5 (repeat for more; the "
                         "sweep is their cross product)")
    sw.add_argument("--random", action="append", default=[], metavar="KEY=LO:HI",
                    help="a numeric setting drawn uniformly from [LO, HI] (--samples times)")
    sw.add_argument("--samples", type=int, default=0, help="how many --random draws")
    sw.add_argument("--seeds", type=int, default=1,
                    help="run every point with seeds 0..K-1 (train.seed and model.seed)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a fixed setting for every trial, as for train")
    sw.add_argument("--max-concurrent", type=int, default=None,
                    help="trials at a time (default: one per core of the local machine, or "
                         "of the cluster); each gets cores / this many CPU threads")
    sw.add_argument("--address", default=None,
                    help="join an existing Ray cluster (e.g. 10.0.0.5:6379) instead of "
                         "starting a local Ray; the runs folder must be shared by every node")
    sw.add_argument("--name", default=None, help="sweep name (default MODEL-sweep-DATE-TIME)")
    sw.add_argument("--out", type=Path, default=None,
                    help="runs folder for the trials (default ./runs or $SPARSE_LAB_RUNS); the "
                         "sweep's own folder is OUT/.sweeps/NAME")
    sw.add_argument("--max-trials", type=int, default=None,
                    help="refuse sweeps with more trials than this unless --yes (default 64)")
    sw.add_argument("--yes", action="store_true", help="run a sweep above --max-trials")
    sw.add_argument("--resume", type=Path, default=None,
                    help="a sweep folder: run its unfinished trials only")
    sw.add_argument("--random-seed", type=int, default=0, help="seed of the --random draws")
    sw.add_argument("--shipped", action="store_true",
                    help="write into checkpoints/ (maintainers making the shipped sweep)")
    sw.set_defaults(func=cmd_sweep)

    b = sub.add_parser("bench", help="measure training speed, solver speed and more")
    b.add_argument("what", nargs="?", default="train",
                   choices=["train", "pinwheels", "tree", "conv", "drsae", "sweep", "app", "all"],
                   help="train: the library's benchmarks; pinwheels: the sheet model's and a "
                        "large topographic map's pinwheels against their controls, and filter "
                        "localisation; tree: the lateral model's tree (path share, parent–child "
                        "similarity) against the same model at S = 0; drsae: DrSAE's test error "
                        "on the bundled MNIST split against an MLP and T = 2, time per epoch, "
                        "LISTA against tuned ISTA/FISTA; sweep: 8 tiny trials in a "
                        "plain loop against a Ray sweep on 2 workers; app: the web app (real "
                        "server+browser, app_ui/bench.py; run from the repository root)")
    b.add_argument("--seeds", type=int, default=3, help="pinwheels: seeds of the sheet model")
    b.add_argument("--quick", action="store_true", help="smaller problems, for a smoke test")
    b.add_argument("--device", default="auto")
    b.set_defaults(func=cmd_bench)
    return p


def cmd_train(args: argparse.Namespace, argv: list[str]) -> int:
    from .presets import build_run_config, default_sections, parse_overrides, run_config_sections
    from .training.runs import check_resumable, create_run, load_run, read_run_config

    command = "python -m sparse_models " + shlex.join(argv)
    overrides = parse_overrides(args.overrides)
    if args.resume is not None:
        if overrides or args.init_from:
            raise CLIError("--resume continues a run as it was: it takes no --set or --init-from")
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise CLIError(f"no run folder at {run_dir}")
        config = read_run_config(run_dir)
        if config.model != args.model:
            raise CLIError(f"{run_dir} is a {config.model} run, not {args.model}")
        if check_resumable(run_dir, config) is None:
            print(f"{run_dir.name} stopped before its first checkpoint: starting it over in the "
                  f"same folder", file=sys.stderr)
    else:
        base = None
        parent = None
        if args.init_from is not None:
            src = load_run(args.init_from)
            if src.config.model != args.model:
                raise CLIError(f"--init-from {args.init_from} is a {src.config.model} run, "
                               f"not {args.model}")
            base, parent = run_config_sections(src.config), str(args.init_from)
        else:
            default_sections(args.model)  # unknown model -> clear error before anything else
        config = build_run_config(args.model, overrides, base=base, command=command, parent=parent)
        if args.show:
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        from .data import check_data

        check_data(config.data)  # e.g. a missing image folder, before a run folder is made
        _print_data_notice(config.data)
        runs_dir = args.out
        if args.shipped:
            from .training.runs import SHIPPED_DIR

            runs_dir = SHIPPED_DIR
        run_dir = create_run(config, runs_dir=runs_dir, name=args.name,
                             **({"allow_shipped": True} if args.shipped else {}))

    state = _execute_with_progress(config, run_dir, args.quiet,
                                   init_from=args.init_from if args.resume is None else None,
                                   resume=args.resume is not None,
                                   allow_shipped=bool(getattr(args, "shipped", False)))
    if args.shipped and state == "completed":
        _finish_shipped(run_dir)
    return _report_end(config, run_dir, state)


def _print_data_notice(data_cfg: Any) -> None:
    """A source that may load something other than asked (MNIST's bundled subset when the
    full set cannot be had) says which, before training."""
    from .data import source_of

    notice = getattr(source_of(data_cfg), "notice", None)
    if notice is not None:
        print(notice(data_cfg), file=sys.stderr)


def _execute_with_progress(config: Any, run_dir: Path, quiet: bool, **kwargs: Any) -> str:
    """`execute_run` with a progress bar, Ctrl-C stopping it cleanly; prints the final state."""
    from .training.pipeline import execute_run

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    bar = _progress_bar(config.train.steps, quiet)
    try:
        def on_progress(info: Any, _filters: Any) -> None:
            if bar is not None:
                bar.n = info.step
                shown = {k: v for k, v in info.metrics.items() if k == "loss" or len(info.metrics) < 5}
                bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
                bar.refresh()

        state = execute_run(config, run_dir, should_stop=stop.is_set, on_progress=on_progress,
                            **kwargs)
    finally:
        if bar is not None:
            bar.close()
        signal.signal(signal.SIGINT, previous)
    print(f"{state}: {run_dir}")
    return state


def _report_end(config: Any, run_dir: Path, state: str) -> int:
    """What to do next (or why it failed), and the run's health; the exit code."""
    if state == "failed":
        from .training.runs import RunWriter

        print(f"error: {RunWriter(run_dir).read_status().get('error', 'training failed')}",
              file=sys.stderr)
        return 1
    if state == "stopped":
        print(f"resume with: python -m sparse_models train {config.model} --resume {run_dir}")
    else:
        print(f"analyse with: python -m sparse_models analyze {run_dir}")
    print(f"health: {_health_line(run_dir)}")
    return 0


def cmd_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    from .presets import parse_overrides
    from .sweep import DEFAULT_MAX_TRIALS, SweepSpec, create_sweep, expand, read_sweep, sweeps_dir
    from .sweep.runner import run_sweep
    from .sweep.spec import default_name, parse_grid, parse_random
    from .training.runs import SHIPPED_DIR, default_runs_dir

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise CLIError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    if args.address:
        from .sweep.runner import check_reachable

        check_reachable(args.address)  # in seconds, before a sweep folder is made
    if args.resume is not None:
        if args.model or args.grid or args.random or args.overrides or args.samples \
                or args.seeds != 1 or args.name:
            raise CLIError("--resume runs a sweep's unfinished trials as it was defined: it "
                           "takes no model, --grid, --random, --samples, --seeds, --set or "
                           "--name")
        sweep = read_sweep(args.resume)
        if sweep.shipped and not args.shipped:
            raise CLIError(f"{args.resume} is a shipped sweep and is read-only")
    else:
        if not args.model:
            raise CLIError("name the model to sweep (see `list --models`), or --resume a sweep")
        spec = SweepSpec(model=args.model, grid=parse_grid(args.grid),
                         random=parse_random(args.random), samples=args.samples,
                         seeds=args.seeds, fixed=dict(parse_overrides(args.overrides)),
                         random_seed=args.random_seed)
        limit = args.max_trials if args.max_trials is not None else DEFAULT_MAX_TRIALS
        if limit < 1:
            raise CLIError(f"--max-trials must be at least 1, got {limit}")
        name = args.name or default_name(args.model)
        from .training.runs import sanitize_run_name

        if sanitize_run_name(name) != name:
            raise CLIError(f"sweep name {name!r}: use letters, digits, '.', '-' and '_' only")
        trials, fixed, keys = expand(spec, name, max_trials=limit, confirmed=args.yes)
        runs_dir = SHIPPED_DIR if args.shipped else (args.out or default_runs_dir())
        runs_dir = Path(runs_dir).resolve()
        taken = [t.run for t in trials if (runs_dir / t.run).exists()]
        if taken:
            raise CLIError(f"run folders named like this sweep's trials already exist in "
                           f"{runs_dir} (e.g. {taken[0]}); pick another --name")
        from .data import check_data
        from .presets import build_run_config

        data = build_run_config(args.model, trials[0].overrides(fixed, keys)).data
        check_data(data)
        _print_data_notice(data)
        command = "python -m sparse_models " + shlex.join(argv)
        sweep = create_sweep(sweeps_dir(runs_dir), name, spec, trials, fixed, keys, runs_dir,
                             command=command)
        print(f"sweep {name}: {len(trials)} trials; its folder is {sweep.path}", file=sys.stderr)
    try:
        counts = run_sweep(sweep, max_concurrent=args.max_concurrent, address=args.address,
                           allow_shipped=args.shipped)
    except KeyboardInterrupt:
        return 130
    if args.shipped:  # the runs folder is recorded relative to the sweep, so a clone opens it
        _relative_runs_dir(sweep.path)
    done = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing to run"
    print(f"sweep {sweep.name}: {done}; table: {sweep.path / 'trials.csv'}")
    print(f"see it on the Sweep page, or: python -m sparse_models sweep --resume {sweep.path}")
    return 1 if counts.get("failed") else 0


def _relative_runs_dir(path: Path) -> None:
    import os

    from .training.runs import read_json, write_json_atomic

    d = read_json(path / "sweep.json")
    d["runs_dir"] = os.path.relpath(d["runs_dir"], path)
    write_json_atomic(path / "sweep.json", d)


def prune_run(source: Path | str, threshold: float, name: str | None = None,
              steps: int | None = None, runs_dir: Path | str | None = None,
              command: str = "", max_samples: int = 5000) -> tuple[Path, Any, dict[str, Any]]:
    """Prune a finished tree-structured run and make the run that trains on from it.

    Measures each branch's usage (the share of the run's first `max_samples` training inputs on
    which any unit of the subtree is active), removes the branches used less than `threshold`
    (`models.lateral.prune`), and makes a NEW run folder (`source` is never written) whose
    config carries the pruned tree (`parents`), `parent` = source and `steps` training steps
    (default: the source's own), with the pruned atoms and S as its step-0 checkpoint.
    Train it with `execute_run(config, path, resume=True)` or the job manager's resume.
    Returns (its folder, its config, {units_before, units_after, removed, min_usage}).
    CLIError / ConfigError in words for a run that is not a tree model, a threshold outside
    0..1, a threshold that removes every branch, or bad steps."""
    import torch

    from .models.lateral import prune
    from .presets import build_run_config, run_config_sections
    from .training.pipeline import create_run_from_model
    from .training.runs import default_runs_dir, load_run

    if not (isinstance(threshold, int | float) and math.isfinite(threshold)
            and 0.0 <= threshold <= 1.0):
        raise CLIError(f"the prune threshold is a share of the inputs, between 0 and 1; got "
                       f"{threshold}")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise CLIError(f"--steps must be a positive number of training steps, got {steps}")
    src = load_run(source)
    model = src.model
    if src.layout.kind != "tree" or not hasattr(model, "branch_usage"):
        raise CLIError(f"{src.name} is a {src.config.model!r} run whose units "
                       f"{'form a tree' if src.layout.kind == 'tree' else 'are not on a tree'}"
                       f"; pruning needs a tree-structured lateral model (train one with "
                       f"`python -m sparse_models train lateral`)")
    x = src.dataset().x[:max_samples].float()
    with torch.no_grad():
        usage = model.branch_usage(x.reshape(x.shape[0], -1))
    pruned = prune(model, usage, float(threshold))  # ConfigError when nothing would be left
    sections = run_config_sections(src.config)
    sections["model"]["parents"] = list(pruned.config.parents)
    if steps is not None:
        sections["train"]["steps"] = int(steps)
    config = build_run_config(src.config.model, {}, base=sections, command=command,
                              parent=str(source))
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if name is None:
        name = f"{src.name}-pruned"
        for i in range(2, 10_000):
            if not (root / name).exists():
                break
            name = f"{src.name}-pruned-{i}"
    path = create_run_from_model(config, pruned, root, name)
    info = {"units_before": model.n_units, "units_after": pruned.n_units,
            "removed": model.n_units - pruned.n_units, "min_usage": float(usage.min())}
    return path, config, info


def cmd_prune(args: argparse.Namespace, argv: list[str]) -> int:
    command = "python -m sparse_models " + shlex.join(argv)
    run_dir, config, info = prune_run(args.run, args.threshold, name=args.name,
                                      steps=args.steps, runs_dir=args.out, command=command)
    print(f"pruned {args.run}: {info['units_before']} → {info['units_after']} units "
          f"({info['removed']} in branches used on fewer than {args.threshold:g} of the "
          f"inputs); training {config.train.steps} steps on into {run_dir}")
    state = _execute_with_progress(config, run_dir, args.quiet, resume=True)
    return _report_end(config, run_dir, state)


def _health_line(run_dir: Path) -> str:
    """The run's health verdict and its reasons, as `status.json` records them."""
    from .training.runs import RunWriter

    health = RunWriter(run_dir, allow_shipped=True).read_status().get("health")
    if not isinstance(health, dict) or not isinstance(health.get("verdict"), str):
        return "unknown (no verdict was recorded)"
    reasons = [r for r in health.get("reasons") or [] if isinstance(r, str)]
    return health["verdict"] + (f" ({'; '.join(reasons)})" if reasons else "")


def _finish_shipped(run_dir: Path) -> None:
    """A shipped run is final: cache its analysis (the app can't write there later) and drop the
    resume checkpoint, which only doubles the size of what the repo carries."""
    from .analysis.cached import analyze_run

    analyze_run(run_dir, allow_shipped=True)
    (Path(run_dir) / "checkpoint.safetensors").unlink(missing_ok=True)


class _LineProgress:
    """Progress for a log or a pipe (stderr is not a terminal): a plain line at every tenth of
    the run, where a redrawn bar would pile up as one endless line of carriage returns."""

    def __init__(self, total: int, file: Any = None) -> None:
        self.total, self.n, self.file = total, 0, file or sys.stderr
        self.postfix: dict[str, str] = {}
        self._shown = -1
        self._start = time.perf_counter()

    def set_postfix(self, values: dict[str, str], refresh: bool = False) -> None:
        self.postfix = dict(values)

    def refresh(self) -> None:
        tenth = 10 * self.n // max(self.total, 1)
        if tenth == self._shown:
            return
        self._shown = tenth
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        print(f"step {self.n}/{self.total} ({100 * self.n // max(self.total, 1)}%), "
              f"{time.perf_counter() - self._start:.1f} s{extra}", file=self.file, flush=True)

    def close(self) -> None:
        pass


def _progress_bar(total: int, quiet: bool):
    if quiet:
        return None
    if not sys.stderr.isatty():
        return _LineProgress(total)
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)


def cmd_analyze(args: argparse.Namespace, argv: list[str]) -> int:
    from .analysis.cached import analyze_run

    if args.samples < 100:
        raise CLIError(f"--samples must be at least 100, got {args.samples}")
    kwargs = {"max_samples": args.samples}
    if args.smooth is not None:
        if not math.isfinite(args.smooth) or not 0 <= args.smooth <= 100:
            raise CLIError(f"--smooth must be a number from 0 to 100 (map units), got "
                           f"{args.smooth}")
        kwargs["smooth_sigma"] = args.smooth
    if args.shipped:  # a refresh: computed afresh, stored as the run's only analysis
        kwargs["allow_shipped"] = True
        kwargs["use_cache"] = False
    result = analyze_run(args.run, **kwargs)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {_fmt(v)}")
    return 0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def cmd_list(args: argparse.Namespace, argv: list[str]) -> int:
    if args.models:
        from .models import available_models

        for name, entry in sorted(available_models().items()):
            print(f"{name:<16} {entry.description}")
        return 0
    from .training.runs import SHIPPED_DIR, default_runs_dir, list_runs

    dirs = [SHIPPED_DIR, args.runs_dir or default_runs_dir()]
    runs = list_runs(dirs)
    if not runs:
        print(f"no runs in {', '.join(str(d) for d in dirs)}")
        return 0
    for r in runs:
        tag = " (shipped)" if r.shipped else ""
        health = f" {r.health}" if r.health else ""
        print(f"{r.name:<40} {r.model or '?':<14} {r.state:<10}{health:<10} {r.steps or 0:>6} "
              f"steps  {r.summary:<60} {r.path}{tag}")
    return 0


def cmd_bench(args: argparse.Namespace, argv: list[str]) -> int:
    if args.what in ("train", "all"):
        from .bench import run_library_bench

        run_library_bench(quick=args.quick, device=args.device)
    if args.what in ("pinwheels", "all"):
        from .bench_pinwheels import run_pinwheel_bench

        if args.seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
        run_pinwheel_bench(quick=args.quick, seeds=args.seeds)
    if args.what in ("conv", "all"):
        from .bench_conv import run_conv_bench

        run_conv_bench(quick=args.quick)
    if args.what in ("tree", "all"):
        from .bench_tree import run_tree_bench

        run_tree_bench(quick=args.quick)
    if args.what in ("drsae", "all"):
        from .bench_drsae import run_drsae_bench

        run_drsae_bench(quick=args.quick)
    if args.what in ("sweep", "all"):
        from .bench_sweep import run_sweep_bench

        run_sweep_bench(quick=args.quick)
    if args.what in ("app", "all"):
        # The app's benchmark belongs to the app (app_ui/bench.py, beside this package), not to
        # the library, which never imports streamlit: it is imported only when asked for.
        from app_ui.bench import run_app_bench

        run_app_bench(quick=args.quick)
    return 0
