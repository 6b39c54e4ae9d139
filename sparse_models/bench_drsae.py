"""`python -m sparse_models bench drsae`: DrSAE and LISTA on MNIST, measured in one run.

On the bundled 4,000 / 1,000 MNIST split (`data.version=subset`, the same for every machine):

1. Test error of the default DrSAE (400 units, T = 11; Rolfe & LeCun, ICLR 2013), trained from
   scratch with the normal training code (`train_and_test`), against (a) an MLP with
   400 ReLU hidden units and a softmax output and (b) the same DrSAE at T = 2, both with the same
   budget: steps, batch size and optimiser (the MLP's learning rate is picked on a validation
   split carved out of the training images, never on the test images). Target: DrSAE ≤ 5 % and
   below both. The unit counts (part / categorical / dead) come from the run's analysis.
2. Wall time of one epoch of 4,000 images at the paper's size (400 units, T = 11, the default
   batch), training steps only, in the fine-tuning phase (its steps are the costlier ones); the
   best of a few timed epochs on torch's threads in this process. Target ≤ 2 s on 2 threads.
3. LISTA (Gregor & LeCun 2010) at T = 1, 3, 5, trained on a sparse-coding teacher's dictionary
   of the same data: the FISTA iterations needed to reach LISTA's code error on held-out images
   (target ≥ 10 × T), and beside it ISTA/FISTA with their threshold tuned per iteration count
   (tuned on training images, reported on the test images): the fair baseline. The teacher is
   the shipped `checkpoints/sparse-coding-mnist` when it is there, else one trained here.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

TARGETS = {"error": 0.05, "epoch_s": 2.0, "lista_factor": 10.0}
LISTA_T = (1, 3, 5)
SUBSET = {"data.source": "mnist", "data.version": "subset"}
TEACHER = "checkpoints/sparse-coding-mnist"
MLP_LRS = (0.03, 0.1, 0.3, 1.0)  # the grid the MLP's rate is picked from (validation split)
# The teacher a bench trains when none is shipped: the shipped one's recipe (checkpoints/README.md).
TEACHER_RECIPE = {"model.n_units": 400, "model.lam": 0.05, "model.positive": True,
                  "train.snapshot_every": 0}


def _mark(ok: bool) -> str:
    return "✔" if ok else "✘"


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def _pct(v: Any) -> str:
    x = _num(v)
    return "—" if not math.isfinite(x) else f"{x:.1%}"


def machine_load() -> str:
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return f"{cores} cores"
    busy = (" — other work shares the cores: wall times are not comparable with the targets"
            if load > 0.5 * cores else "")
    return f"load {load:.1f} on {cores} cores{busy}"


# --- the MLP baseline -------------------------------------------------------------------------


def train_mlp(x: torch.Tensor, y: torch.Tensor, x_eval: torch.Tensor, y_eval: torch.Tensor,
              steps: int, batch_size: int, optimizer: str, lr: float, momentum: float = 0.0,
              hidden: int = 400, seed: int = 0) -> dict[str, float]:
    """A 784-`hidden`-10 ReLU MLP with a softmax (cross-entropy) trained for `steps` batches of
    `batch_size` (x: (n, P), y: (n,)) with Adam or SGD (`momentum`), the data's batch order
    as in training (`data.batches`, seed 0). Returns {"error": on x_eval, "wall_s"}."""
    from .data import batches
    from .data.base import Dataset
    from .training.optim import SGD, AdamW

    torch.manual_seed(seed)
    n_classes = int(max(int(y.max()), int(y_eval.max()))) + 1
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, n_classes))
    # the trainer's own optimisers, as DrSAE gets
    opt = (AdamW(net.parameters(), lr=lr) if optimizer == "adam"
           else SGD(net.parameters(), lr=lr, momentum=momentum))
    it = batches(Dataset(x=x, input_shape=(1, 1, x.shape[1]), y=y), batch_size, seed=0)
    t = time.perf_counter()
    for _ in range(steps):
        xb, yb = next(it)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    wall = time.perf_counter() - t
    with torch.no_grad():
        err = float((net(x_eval).argmax(-1) != y_eval).float().mean())
    return {"error": err if math.isfinite(err) else math.nan, "wall_s": wall}


def mlp_baseline(cfg: Any, lrs: tuple[float, ...] = MLP_LRS) -> dict[str, Any]:
    """The MLP with the DrSAE run's budget (`cfg`: its RunConfig): its rate picked from `lrs` on
    the last 500 training images (trained on the rest), then trained on all of them and tested."""
    from .data import load_dataset

    ds = load_dataset(cfg.data)
    tc = cfg.train
    momentum = float(getattr(cfg.model_config, "momentum", 0.0))
    n_val = min(500, len(ds) // 5)
    xa, ya, xv, yv = ds.x[:-n_val], ds.y[:-n_val], ds.x[-n_val:], ds.y[-n_val:]
    val = {lr: train_mlp(xa, ya, xv, yv, tc.steps, tc.batch_size, tc.optimizer, lr,
                         momentum)["error"] for lr in lrs}
    best = min(lrs, key=lambda lr: (val[lr] if math.isfinite(val[lr]) else math.inf))
    out = train_mlp(ds.x, ds.y, ds.x_test, ds.y_test, tc.steps, tc.batch_size, tc.optimizer,
                    best, momentum)
    return {**out, "lr": best, "validation": val, "momentum": momentum}


# --- time per epoch ---------------------------------------------------------------------------


def epoch_seconds(overrides: dict[str, Any] | None = None, epochs: int = 3,
                  n_images: int = 4000) -> dict[str, Any]:
    """Best wall time of `epochs` timed epochs of `n_images` (training steps only, fine-tuning
    phase) of the default DrSAE (or with `overrides`), after a few warm-up steps."""
    from .data import batches, load_dataset
    from .models import build_model
    from .presets import build_run_config
    from .training.trainer import make_optimizer

    cfg = build_run_config("drsae", {**SUBSET, **(overrides or {})})
    ds = load_dataset(cfg.data)
    model = build_model(cfg.model, cfg.model_config)
    model.steps_done.fill_(cfg.model_config.pretrain_steps)  # the fine-tuning phase
    opt = make_optimizer(model, cfg.train)
    bs = cfg.train.batch_size
    per_epoch = max(n_images // bs, 1)
    it = batches(ds, bs, seed=0)
    xs = [next(it) for _ in range(per_epoch)]
    for x, y in xs[:5]:
        model.train_step(x, y, opt)
    best = math.inf
    for _ in range(epochs):
        t = time.perf_counter()
        for x, y in xs:
            model.train_step(x, y, opt)
        best = min(best, time.perf_counter() - t)
    return {"epoch_s": best * n_images / (per_epoch * bs), "batch_size": bs,
            "threads": torch.get_num_threads(), "units": cfg.model_config.n_units,
            "n_iter": cfg.model_config.n_iter}


# --- LISTA against ISTA / FISTA ---------------------------------------------------------------


def train_and_test(overrides: dict[str, Any], command: str) -> dict[str, Any]:
    """A DrSAE trained from scratch and analysed on the held-out split
    (`bench.train_from_scratch`): the report (`test_error`, unit counts, ...) plus `wall_s`."""
    from .bench import train_from_scratch

    return train_from_scratch("drsae", overrides, command)


def _train_run(model: str, overrides: dict[str, Any], folder: Path, name: str) -> Path:
    from .presets import build_run_config
    from .training.pipeline import execute_run
    from .training.runs import create_run

    cfg = build_run_config(model, overrides, command="python -m sparse_models bench drsae")
    run_dir = create_run(cfg, runs_dir=folder, name=name)
    state = execute_run(cfg, run_dir)
    if state != "completed":
        raise RuntimeError(f"the bench's {model} run ended {state}")
    return run_dir


def tuned_on(x_tune: torch.Tensor, x_eval: torch.Tensor, D: torch.Tensor, lam: float,
             positive: bool, n_iter: int) -> dict[str, np.ndarray]:
    """ISTA/FISTA code errors on x_eval after t = 1..n_iter iterations, each t with the threshold
    scale that was best for it on x_tune (`analysis.code_error.tuned_threshold_errors`)."""
    from .analysis.code_error import ista_fista_paths, relative_error
    from .models.penalties import fista_solve, lipschitz

    tuned = _tuned(x_tune, D, lam, positive, n_iter)
    z_star = fista_solve(x_eval, D, lam, 5000, positive, tol=1e-8, final_gap=False)[0]
    L = lipschitz(D)
    out: dict[str, np.ndarray] = {}
    for k in ("ista", "fista"):
        errs = np.empty(n_iter)
        for s in np.unique(tuned[f"{k}_scale"]):
            zi, zf = ista_fista_paths(x_eval, D, lam, n_iter, positive, threshold=s * lam / L)
            e = relative_error(zi if k == "ista" else zf, z_star)
            sel = tuned[f"{k}_scale"] == s
            errs[sel] = e[sel]
        out[k] = errs
        out[f"{k}_scale"] = tuned[f"{k}_scale"]
    return out


def _tuned(x: torch.Tensor, D: torch.Tensor, lam: float, positive: bool,
           n_iter: int) -> dict[str, np.ndarray]:
    from .analysis.code_error import tuned_threshold_errors

    return tuned_threshold_errors(x, D, lam, positive, n_iter=n_iter)


def lista_rows(teacher: Path, folder: Path, t_values: tuple[int, ...] = LISTA_T,
               overrides: dict[str, Any] | None = None, n_iter: int = 300,
               n_eval: int = 1000) -> list[dict[str, Any]]:
    """For each T: a LISTA run on `teacher` trained here, its code error on the test images,
    the iterations ISTA and FISTA need to reach it (None: not within `n_iter`), and the errors
    of plain and tuned-threshold ISTA/FISTA at T iterations."""
    from .analysis.code_error import code_error_curves, iterations_to_match
    from .data import load_dataset
    from .training.runs import load_run

    rows = []
    curves = tuned = None
    for T in t_values:
        over = {**SUBSET, **(overrides or {}), "model.teacher": str(teacher), "model.n_iter": T,
                "train.snapshot_every": 0}
        t0 = time.perf_counter()
        run = load_run(_train_run("lista", over, folder, f"lista-t{T}"))
        wall = time.perf_counter() - t0
        m = run.model
        if curves is None:
            ds = load_dataset(run.config.data)
            x_eval, x_tune = ds.x_test[:n_eval], ds.x[:n_eval]
            D, lam, pos = m.D.detach(), m.config.lam, m.config.positive
            curves = code_error_curves(x_eval, D, lam, pos, n_iter=n_iter)
            tuned = tuned_on(x_tune, x_eval, D, lam, pos, n_iter=min(n_iter, 4 * max(t_values)
                                                                     * int(TARGETS["lista_factor"])))
        with torch.no_grad():
            err = float(code_error_curves(x_eval, D, lam, pos, n_iter=1, lista=m)["lista"][-1])
        rows.append({
            "T": T, "lista_error": err,
            "fista_iters": iterations_to_match(curves["fista"], err),
            "ista_iters": iterations_to_match(curves["ista"], err),
            "tuned_fista_iters": iterations_to_match(tuned["fista"], err),
            "fista_error_at_T": float(curves["fista"][T - 1]),
            "ista_error_at_T": float(curves["ista"][T - 1]),
            "tuned_fista_error_at_T": float(tuned["fista"][T - 1]),
            "tuned_fista_scale_at_T": float(tuned["fista_scale"][T - 1]),
            "max_iters": n_iter, "tuned_max_iters": len(tuned["fista"]),
            "steps": run.config.train.steps, "train_s": wall,
        })
    return rows


# --- the bench --------------------------------------------------------------------------------


def bench_drsae(quick: bool = False, overrides: dict[str, Any] | None = None,
                lista_overrides: dict[str, Any] | None = None,
                teacher_overrides: dict[str, Any] | None = None,
                t_values: tuple[int, ...] = LISTA_T, mlp_lrs: tuple[float, ...] = MLP_LRS,
                timing_epochs: int = 3, lista_iters: int = 300) -> dict[str, Any]:
    """Everything the table shows, measured now. `overrides` apply to every DrSAE (tests use a
    tiny config); `quick` trains 200 steps (its figures say nothing about the targets)."""
    from .models.lista import find_teacher
    from .presets import build_run_config

    command = "python -m sparse_models bench drsae" + (" --quick" if quick else "")
    over = {**SUBSET, "train.snapshot_every": 0, **(overrides or {})}
    if quick:
        over.setdefault("train.steps", 200)
        over.setdefault("model.pretrain_steps", 80)
    cfg = build_run_config("drsae", over, command=command)
    res: dict[str, Any] = {"quick": quick, "threads": torch.get_num_threads(),
                           "load": machine_load(),
                           "summary": cfg.model_cls.summarize_config(cfg.model_config),
                           "n_iter": cfg.model_config.n_iter, "steps": cfg.train.steps, "batch_size": cfg.train.batch_size,
                           "optimizer": cfg.train.optimizer, "lr": cfg.train.lr,
                           "epochs": cfg.train.steps * cfg.train.batch_size / 4000}
    res["drsae"] = train_and_test(over, command)
    res["drsae_t2"] = train_and_test({**over, "model.n_iter": 2}, command)
    res["mlp"] = mlp_baseline(cfg, mlp_lrs)
    timing_over = {k: v for k, v in over.items() if not k.startswith("model.n_")} if not quick \
        else over
    res["timing"] = epoch_seconds(timing_over, epochs=timing_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        teacher = None if teacher_overrides is not None else find_teacher(TEACHER)
        res["teacher"] = str(TEACHER) if teacher is not None else "trained here"
        if teacher is None:
            teacher = _train_run("sparse_coding", {**SUBSET, **TEACHER_RECIPE,
                                                   **(teacher_overrides or {})},
                                 Path(tmp), "teacher")
        res["lista"] = lista_rows(teacher, Path(tmp), t_values, lista_overrides,
                                  n_iter=lista_iters)
    return res


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    """Each target met (True) or not."""
    d, t2, mlp = (_num(res["drsae"].get("test_error")), _num(res["drsae_t2"].get("test_error")),
                  _num(res["mlp"].get("error")))
    ok = {"error": math.isfinite(d) and d <= TARGETS["error"],
          "vs_mlp": math.isfinite(d) and math.isfinite(mlp) and d < mlp,
          "vs_t2": math.isfinite(d) and math.isfinite(t2) and d < t2,
          "epoch_s": _num(res["timing"].get("epoch_s")) <= TARGETS["epoch_s"]}
    for row in res["lista"]:
        n = row["fista_iters"]
        ok[f"lista_t{row['T']}"] = n is None or n >= TARGETS["lista_factor"] * row["T"]
    return ok


def format_drsae_bench(res: dict[str, Any]) -> list[str]:
    """The side-by-side table (lines), each target marked ✔/✘."""
    ok = verdicts(res)
    d, t2, mlp = res["drsae"], res["drsae_t2"], res["mlp"]
    quick = (" — QUICK: fewer steps than the default, so the ✔/✘ marks say nothing about the "
             "targets" if res.get("quick") else "")
    lines = [f"DrSAE bench on the bundled MNIST subset (4,000 train / 1,000 test): "
             f"{res['summary']}; {res['steps']} steps × {res['batch_size']} "
             f"({res['epochs']:.3g} epochs), {res['optimizer']} lr {res['lr']:g}; "
             f"torch {res['threads']} thread(s); {res['load']}{quick}"]
    w = 44
    lines.append(f"  {'test error':<{w}}  {'value':>9}  target")
    lines.append(f"  {'DrSAE, T = ' + str(res['n_iter']) + ' (default)':<{w}}"
                 f"  {_pct(d.get('test_error')):>9}  ≤ {TARGETS['error']:.1%} "
                 f"{_mark(ok['error'])}")
    lines.append(f"  {'(a) MLP 400 ReLU + softmax, same budget':<{w}}  {_pct(mlp.get('error')):>9}"
                 f"  DrSAE below it {_mark(ok['vs_mlp'])}  (lr {mlp.get('lr'):g} picked on "
                 f"500 training images"
                 + (f", momentum {mlp['momentum']:g}" if mlp.get("momentum") else "") + ")")
    lines.append(f"  {'(b) DrSAE T = 2, same budget':<{w}}  {_pct(t2.get('test_error')):>9}"
                 f"  DrSAE below it {_mark(ok['vs_t2'])}")
    lines.append(f"  DrSAE units (live, on the test images): {d.get('part_units')} part "
                 f"(angle < {d.get('part_angle')}), {d.get('categorical_units')} categorical "
                 f"(> {d.get('categorical_angle')}), {d.get('dead_units')} dead; mean active "
                 f"{_num(d.get('test_l0')):.1f}; training {_num(d.get('wall_s')):.0f} s end to end")
    tm = res["timing"]
    lines.append(f"  time per epoch of 4,000 images ({tm['units']} units, T = {tm['n_iter']}, "
                 f"batch {tm['batch_size']}, {tm['threads']} thread(s)): "
                 f"{_num(tm['epoch_s']):.2f} s  target ≤ {TARGETS['epoch_s']:g} s "
                 f"{_mark(ok['epoch_s'])}")
    lines.append(f"  LISTA on the teacher {res['teacher']} (relative code error on 1,000 test "
                 f"images; iterations to reach LISTA's error; > N: not within N; training "
                 f"steps and seconds)")
    lines.append(f"    {'T':>2}  {'LISTA':>9}  {'FISTA@T':>9}  {'tunedFISTA@T':>12}  "
                 f"{'ISTA its':>8}  {'FISTA its':>9}  {'tuned its':>9}  {'trained':>13}  "
                 f"target FISTA its")
    for row in res["lista"]:
        T = row["T"]

        def its(v: Any, cap: int) -> str:
            return f"> {cap}" if v is None else str(v)

        lines.append(f"    {T:>2}  {row['lista_error']:>9.2e}  {row['fista_error_at_T']:>9.2e}  "
                     f"{row['tuned_fista_error_at_T']:>12.2e}  "
                     f"{its(row['ista_iters'], row['max_iters']):>8}  "
                     f"{its(row['fista_iters'], row['max_iters']):>9}  "
                     f"{its(row['tuned_fista_iters'], row['tuned_max_iters']):>9}  "
                     f"{str(row['steps']) + ', ' + format(row['train_s'], '.0f') + ' s':>13}  "
                     f"≥ {TARGETS['lista_factor'] * T:g} {_mark(ok[f'lista_t{T}'])}")
    lines.append(f"  targets met: {sum(ok.values())} of {len(ok)}")
    return lines


def run_drsae_bench(quick: bool = False) -> dict[str, Any]:
    res = bench_drsae(quick=quick)
    for line in format_drsae_bench(res):
        print(line)
    return res
