"""Sweeps: many runs over a grid (or random draws) of settings and seeds, on Ray.

`spec` (the definition and its trials, checked like `train --set`), `store` (the sweep folder:
definition, append-only trial log, table), `trial` (one trial: an ordinary run, trained and
analysed by the single-run code) and `runner` (the trials on a local Ray or a cluster). Ray is
imported only when a sweep runs.
"""

from .spec import DEFAULT_MAX_TRIALS, SweepSpec, Trial, expand, parse_grid, parse_random
from .store import (
    Sweep,
    SweepInfo,
    create_sweep,
    list_sweeps,
    read_sweep,
    sweep_state,
    sweeps_dir,
    trial_rows,
)

__all__ = ["DEFAULT_MAX_TRIALS", "Sweep", "SweepInfo", "SweepSpec", "Trial", "create_sweep",
           "expand", "list_sweeps", "parse_grid", "parse_random", "read_sweep", "sweep_state",
           "sweeps_dir", "trial_rows"]
