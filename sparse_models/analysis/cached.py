"""Analyse a run folder, caching the result in the run's `analysis.json`.

The cache key holds the analysis settings and the run's step count, so a resumed or retrained
run is analysed afresh. Shipped runs carry their analysis from when they were made (see
`checkpoints/README.md`); their folder is never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import DEFAULT_SMOOTH_SIGMA, analyze_model

REPORT_VERSION = 8  # bumped when the report's keys change: older cached entries are recomputed
# 8: a conv model's activity samples spread over its first 500 images, not its first image's positions
# 6: tree measures (path share, parent–child similarity, clash share, branch usage; why_no_tree)
# 5: a sheet's Λ in pixels and retinotopy; non-wrapping pools hang over the map's edges
# 3: sparsity measures on the first ACTIVITY_SAMPLES samples (the app's rule); zero codes


def _key(run: Any, max_samples: int, smooth_sigma: float) -> str:
    # The step the weights themselves record (the status may be damaged or out of date).
    steps = run.weights_step if run.weights_step is not None else run.status.get("steps_done", 0)
    return f"v={REPORT_VERSION};samples={max_samples};smooth={smooth_sigma:g};step={steps}"


def analyze_run(run: Any, max_samples: int = 5000, smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
                use_cache: bool = True, allow_shipped: bool = False) -> dict[str, Any]:
    """The analysis dict of `analyze_model` for a run (a path or a LoadedRun), cached on disk."""
    from ..training.runs import load_run

    if isinstance(run, str | Path):
        run = load_run(run)
    key = _key(run, max_samples, smooth_sigma)
    cache = run.read_analysis() if use_cache else {}
    entries = cache.get("entries", {}) if isinstance(cache.get("entries"), dict) else {}
    if key in entries and isinstance(entries[key], dict):
        return entries[key]
    ds = run.dataset()
    result = analyze_model(run.model, ds.x, periodic=run.map_periodic, smooth_sigma=smooth_sigma,
                           max_samples=max_samples, x_test=ds.x_test, y_test=ds.y_test)
    # Entries of other report versions are never read again: drop them, so the file holds only
    # what the code computes now.
    current = f"v={REPORT_VERSION};"
    entries = {k: v for k, v in entries.items() if k.startswith(current)}
    entries[key] = result
    run.write_analysis({"entries": entries}, allow_shipped=allow_shipped)
    return result
