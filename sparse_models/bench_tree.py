"""`python -m sparse_models bench tree`: does tree-form lateral inhibition make a tree of features?
Measured in one run.

The `lateral` model at its defaults (tree-form S, Gregor, Szlam & LeCun, NIPS 2011) and the same
model with S = 0 (`model.s_scale=0`, `model.learn_s=false`: plain L1 sparse coding on the same
units), each trained from scratch with the normal training code (`bench.train_from_scratch`)
and analysed by the report (its tree keys), printed side by side:

- path share: of the inputs with an active unit, the share whose active units all lie on one
  root-to-leaf path (target ≥ 90 % for the default);
- parent–child similarity: mean |cos| of the decoder atoms of parent–child pairs, against the
  mean over all pairs of distinct units (what random pairs give on average), and their ratio
  (target: clearly higher, ratio ≥ 1.2);
- explained variance, mean active units, branches used on under 1 % of the inputs;
- training time of the default config, end to end (data, training, files; target ≤ 30 s on the
  CPU; torch's thread count is printed, and `train.threads` of the model's preset applies).

The targets are checked on the default model; the S = 0 column is the control that shows what the
tree-form S changes.
"""

from __future__ import annotations

import math
from typing import Any

TARGETS = {"path_share": 0.90, "similarity_ratio": 1.2, "train_s": 30.0}

CONTROL = {"model.s_scale": 0.0, "model.learn_s": False}


def _mark(ok: bool) -> str:
    return "✔" if ok else "✘"


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def _f(v: Any, fmt: str) -> str:
    x = _num(v)
    return "—" if not math.isfinite(x) else format(x, fmt)


def _pct(v: Any) -> str:
    x = _num(v)
    return "—" if not math.isfinite(x) else f"{x:.1%}"


def bench_tree(quick: bool = False, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The default lateral model and its S = 0 control, each trained from scratch and analysed.

    `overrides` apply to both (e.g. a tiny config in tests); `quick` trains 60 steps. Returns
    {"default": analysis, "control": analysis, "summary": the default's config in words,
    "threads": the torch threads training ran on (`train.threads`, else torch's default),
    "torch_threads": torch's default in this process, "quick": quick}."""
    import torch

    from .bench import train_from_scratch
    from .presets import build_run_config

    over = dict(overrides or {})
    if quick:
        over.setdefault("train.steps", 60)
    command = "python -m sparse_models bench tree" + (" --quick" if quick else "")
    cfg = build_run_config("lateral", over, command=command)
    torch_threads = torch.get_num_threads()  # before training, which sets train.threads
    summary = cfg.model_cls.summarize_config(cfg.model_config)
    data = cfg.data
    where = f"{getattr(data, 'source', '?')} data"
    summary = f"{summary}; {where}"
    default = train_from_scratch("lateral", over, command)
    control = train_from_scratch("lateral", {**over, **CONTROL}, command)
    return {"default": default, "control": control, "summary": summary,
            "threads": cfg.train.threads or torch_threads, "torch_threads": torch_threads,
            "quick": quick}


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    """Each target met (True) or not by the default model's figures."""
    d = res["default"]
    t = TARGETS
    share = _num(d.get("path_share"))
    ratio = _num(d.get("parent_child_similarity_ratio"))
    wall = _num(d.get("wall_s"))
    return {"path_share": math.isfinite(share) and share >= t["path_share"],
            "similarity_ratio": math.isfinite(ratio) and ratio >= t["similarity_ratio"],
            "train_s": math.isfinite(wall) and wall <= t["train_s"]}


def format_tree_bench(res: dict[str, Any]) -> list[str]:
    """The side-by-side table (lines), the targets marked ✔/✘ on the default model."""
    d, c = res["default"], res["control"]
    ok = verdicts(res)
    t = TARGETS
    quick = " (quick: fewer steps than the default; targets are for the full run)" \
        if res.get("quick") else ""
    rows = [
        ("path share (active units on one path)", _pct(d.get("path_share")),
         _pct(c.get("path_share")),
         f"≥ {t['path_share']:.0%} {_mark(ok['path_share'])}"),
        ("inputs with an active unit", _pct(d.get("tree_active_share")),
         _pct(c.get("tree_active_share")), ""),
        ("mean active units per input", _f(d.get("mean_active_units"), ".2f"),
         _f(c.get("mean_active_units"), ".2f"), ""),
        ("parent–child |cos| (decoder atoms)", _f(d.get("parent_child_similarity"), ".3f"),
         _f(c.get("parent_child_similarity"), ".3f"), ""),
        ("all pairs |cos| (random pairs)", _f(d.get("all_pairs_similarity"), ".3f"),
         _f(c.get("all_pairs_similarity"), ".3f"), ""),
        ("ratio parent–child / all pairs", _f(d.get("parent_child_similarity_ratio"), ".2f"),
         _f(c.get("parent_child_similarity_ratio"), ".2f"),
         f"≥ {t['similarity_ratio']:g} {_mark(ok['similarity_ratio'])}"),
        ("explained variance", _f(d.get("explained_variance"), ".3f"),
         _f(c.get("explained_variance"), ".3f"), ""),
        ("branches used on < 1 % of inputs", str(d.get("branches_under_1pct", "—")),
         str(c.get("branches_under_1pct", "—")), ""),
        (f"training time, s ({d.get('steps')} steps × {d.get('batch_size')})",
         _f(d.get("wall_s"), ".1f"), _f(c.get("wall_s"), ".1f"),
         f"≤ {t['train_s']:g} s {_mark(ok['train_s'])}"),
    ]
    w0 = max(len(r[0]) for r in rows)
    lines = [f"lateral model, tree-form S: {res.get('summary', '')}; trained on "
             f"{res.get('threads', '?')} torch thread(s) (this process's default: "
             f"{res.get('torch_threads', '?')}){quick}",
             f"  {'':<{w0}}  {'default':>10}  {'S = 0':>10}  target (default)"]
    lines += [f"  {a:<{w0}}  {b:>10}  {cc:>10}  {tt}".rstrip() for a, b, cc, tt in rows]
    lines.append(f"  targets met: {sum(ok.values())} of {len(ok)}")
    return lines


def run_tree_bench(quick: bool = False) -> dict[str, Any]:
    res = bench_tree(quick=quick)
    for line in format_tree_bench(res):
        print(line)
    return res
