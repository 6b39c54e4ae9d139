"""`python -m sparse_models bench conv`: the convolutional group-sparse auto-encoder and its
stacking, measured in one run (issue #13).

The default `conv` model (layer 1) is trained from scratch with the normal training code on
the bundled whitened images, then a second layer on its L2-pooled maps (`model.layer1` = that
run, with `STACKED` settings); each is analysed by the report (`analysis.report.conv_summary`):

- training time, end to end (data, training, files), and images per second of training
  (targets: ≤ 60 s each on the CPU);
- phase invariance: mean modulation (max − min)/(max + min) of the response to each unit's best
  grating over its phase, for the pooled units and for the unpooled maps (the baseline), and
  their ratio (target ≤ 0.3 for layer 1);
- translation invariance (images shifted by up to 2 px), the same way, and rotation (±20°);
- explained variance of each layer's own input (the image; layer 1's pooled maps).

`--quick` trains a few steps on small settings to check the wiring: its marks mean nothing.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {"train_s": 60.0, "stacked_train_s": 60.0, "phase_ratio": 0.3}
# The second layer: on layer 1's 16 pooled maps (18×18 for 32-px crops), smaller filters.
STACKED = {"model.maps": 32, "model.kernel": 5, "model.pool_size": 3, "model.pool_stride": 1,
           "model.lam": 0.3, "train.steps": 400}
QUICK = {"data.crop": 20, "data.n_crops": 64, "data.n_test": 16, "data.images": ["camera"],
         "model.maps": 4, "model.kernel": 5, "model.pool_size": 3, "train.steps": 6,
         "train.batch_size": 8, "train.log_every": 2, "train.snapshot_every": 0}
QUICK_STACKED = {"model.maps": 4, "model.kernel": 3, "model.pool_size": 2, "train.steps": 6}


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def _f(v: Any, fmt: str) -> str:
    x = _num(v)
    return "—" if not math.isfinite(x) else format(x, fmt)


def _mark(ok: bool) -> str:
    return "✔" if ok else "✘"


def _train(overrides: dict[str, Any], runs: Path, name: str, command: str) -> dict[str, Any]:
    """Train one conv run into `runs/name` and analyse it: the report plus wall_s,
    images_per_s, state, steps, batch_size, path."""
    from .analysis.report import analyze_model
    from .presets import build_run_config
    from .training.pipeline import execute_run
    from .training.runs import create_run, load_run

    t = time.perf_counter()
    cfg = build_run_config("conv", overrides, command=command)
    run_dir = create_run(cfg, runs_dir=runs, name=name)
    state = execute_run(cfg, run_dir)
    wall = time.perf_counter() - t
    run = load_run(run_dir)
    trained = float(run.status.get("elapsed_s") or wall)
    ds = run.dataset()
    report = analyze_model(run.model, ds.x, max_samples=300)
    return {**report, "wall_s": wall, "state": state, "steps": cfg.train.steps,
            "batch_size": cfg.train.batch_size, "path": str(run_dir),
            "images_per_s": cfg.train.steps * cfg.train.batch_size / trained if trained else None,
            "summary": cfg.model_cls.summarize_config(cfg.model_config)}


def bench_conv(quick: bool = False, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Layer 1 at its defaults and a second layer on it, each trained and analysed:
    {"layer1": report, "stacked": report, "quick": quick, "threads": torch threads}."""
    import torch

    over = {**(QUICK if quick else {}), **(overrides or {})}
    command = "python -m sparse_models bench conv" + (" --quick" if quick else "")
    with tempfile.TemporaryDirectory() as tmp:
        layer1 = _train(over, Path(tmp), "layer1", command)
        stacked_over = {**over, **(QUICK_STACKED if quick else STACKED),
                        "model.layer1": layer1["path"]}
        stacked = _train(stacked_over, Path(tmp), "stacked", command)
    return {"layer1": layer1, "stacked": stacked, "quick": quick,
            "threads": torch.get_num_threads()}


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    """Each target met (True) or not."""
    a, b = res["layer1"], res["stacked"]
    t = TARGETS
    w1, w2, ph = _num(a.get("wall_s")), _num(b.get("wall_s")), _num(a.get("phase_invariance_ratio"))
    return {"train_s": math.isfinite(w1) and w1 <= t["train_s"],
            "stacked_train_s": math.isfinite(w2) and w2 <= t["stacked_train_s"],
            "phase_ratio": math.isfinite(ph) and ph <= t["phase_ratio"]}


def format_conv_bench(res: dict[str, Any]) -> list[str]:
    """The table (lines): a column per layer, the targets marked ✔/✘."""
    a, b = res["layer1"], res["stacked"]
    ok = verdicts(res)
    t = TARGETS
    rows = [
        ("training time, s (end to end)", _f(a.get("wall_s"), ".1f"), _f(b.get("wall_s"), ".1f"),
         f"≤ {t['train_s']:g} s each {_mark(ok['train_s'])} {_mark(ok['stacked_train_s'])}"),
        ("steps × batch", f"{a.get('steps')} × {a.get('batch_size')}",
         f"{b.get('steps')} × {b.get('batch_size')}", ""),
        ("images / s (training)", _f(a.get("images_per_s"), ".0f"),
         _f(b.get("images_per_s"), ".0f"), ""),
    ]
    for kind, what in (("phase", "phase"), ("translation", "translation ±2 px"),
                       ("rotation", "rotation ±20°")):
        rows.append((f"{what}: modulation, unpooled (baseline)",
                     _f(a.get(f"{kind}_modulation_unpooled"), ".3f"),
                     _f(b.get(f"{kind}_modulation_unpooled"), ".3f"), ""))
        rows.append((f"{what}: modulation, pooled",
                     _f(a.get(f"{kind}_modulation_pooled"), ".3f"),
                     _f(b.get(f"{kind}_modulation_pooled"), ".3f"), ""))
        target = f"≤ {t['phase_ratio']:g} (layer 1) {_mark(ok['phase_ratio'])}" \
            if kind == "phase" else ""
        rows.append((f"{what}: ratio pooled / unpooled",
                     _f(a.get(f"{kind}_invariance_ratio"), ".3f"),
                     _f(b.get(f"{kind}_invariance_ratio"), ".3f"), target))
    rows += [
        ("explained variance of the layer's input", _f(a.get("layer_explained_variance"), ".3f"),
         _f(b.get("layer_explained_variance"), ".3f"), ""),
        ("explained variance of the image", _f(a.get("explained_variance"), ".3f"),
         _f(b.get("explained_variance"), ".3f"), ""),
    ]
    w0 = max(len(r[0]) for r in rows)
    quick = (" (--quick: tiny settings to check the wiring; its figures and marks mean "
             "nothing)") if res.get("quick") else ""
    lines = [f"conv: layer 1 {a.get('summary', '')}; layer 2 {b.get('summary', '')}; "
             f"{res.get('threads', '?')} torch thread(s){quick}",
             f"  {'':<{w0}}  {'layer 1':>10}  {'layer 2':>10}  target"]
    lines += [f"  {r[0]:<{w0}}  {r[1]:>10}  {r[2]:>10}  {r[3]}".rstrip() for r in rows]
    lines.append(f"  targets met: {sum(ok.values())} of {len(ok)}"
                 + (" (meaningless with --quick)" if res.get("quick") else ""))
    return lines


def run_conv_bench(quick: bool = False) -> dict[str, Any]:
    res = bench_conv(quick=quick)
    for line in format_conv_bench(res):
        print(line)
    return res
