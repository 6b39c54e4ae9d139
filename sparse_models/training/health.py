"""A trained run's health: did it learn, or did it collapse? Judged from the run's own numbers.

A run can finish every step and still have learned nothing: a map too large for its λ leaves
most units dead, a learning rate too large drives every code to zero, a model may never move
from its random start. `assess` measures that on a sample of the training data and gives a
verdict with the reasons in words, which the run keeps in `status.json` and every view shows.

Verdicts: "healthy"; "warning" (it learned, but something is off, e.g. a fifth of its units
never fire); "collapsed" (what it shows is not a learned model: most units dead, (nearly) all
codes zero, a reconstruction no better than the data's mean, non-finite weights, or filters
still at their random start).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..analysis.sparsity import ACTIVITY_SAMPLES, REL_THRESHOLD

# Thresholds, each a fraction; named here so the words shown and the rule are the same.
DEAD_COLLAPSED = 0.5  # more than half the units never active: collapsed
DEAD_WARNING = 0.2  # more than a fifth: a warning
ZERO_CODES_COLLAPSED = 0.5  # more than half the samples get an all-zero code
EV_COLLAPSED = 0.05  # explains less than 5 % of the variance: no better than the mean
UNCHANGED_COLLAPSED = 0.9  # 90 % of the filters still ≥ 0.99 correlated with their start
UNCHANGED_CORR = 0.99
# "Active" is the one rule every view uses (analysis.sparsity): |z| above REL_THRESHOLD of the
# largest |z| on the run's first ACTIVITY_SAMPLES training samples.
ACTIVE_FRACTION = REL_THRESHOLD
SAMPLES = ACTIVITY_SAMPLES


@dataclass
class Health:
    verdict: str  # healthy | warning | collapsed
    reasons: list[str] = field(default_factory=list)  # in words, for the user
    numbers: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        """One line: the verdict and its first reason."""
        if not self.reasons:
            return self.verdict
        return f"{self.verdict}: {'; '.join(self.reasons)}"


def _fraction(x: float) -> str:
    return f"{100 * x:.0f} %"


@torch.no_grad()
def assess(model: Any, x: torch.Tensor, initial_filters: np.ndarray | None = None) -> Health:
    """The health of `model` on training samples x: (n, n_inputs) (the first `SAMPLES`).

    initial_filters: the filters at step 0 (the replay's first snapshot), to tell whether
    training moved them; None skips that test.
    """
    numbers: dict[str, float | None] = {}
    collapsed: list[str] = []
    warnings: list[str] = []
    params = [p for p in model.parameters()]
    if not all(bool(torch.isfinite(p).all()) for p in params):
        return Health("collapsed", ["its weights hold NaN or infinite values"], numbers)
    device = params[0].device if params else torch.device("cpu")
    xs = x[:SAMPLES].to(device).float()
    xs = xs.reshape(xs.shape[0], -1)
    z = model.encode(xs)
    z = z.reshape(z.shape[0], -1)
    x_hat = model.decode(z).reshape(xs.shape)
    if not (bool(torch.isfinite(z).all()) and bool(torch.isfinite(x_hat).all())):
        return Health("collapsed", ["its codes or reconstructions are NaN or infinite"], numbers)
    a = z.abs()
    top = float(a.max())
    active = a > ACTIVE_FRACTION * top if top > 0 else torch.zeros_like(a, dtype=torch.bool)
    dead = float((~active.any(0)).float().mean())
    zero = float((~active.any(1)).float().mean())
    resid = float(((xs - x_hat) ** 2).sum())
    total = float(((xs - xs.mean(0, keepdim=True)) ** 2).sum())
    ev = 1.0 - resid / total if total > 0 else math.nan
    numbers.update(dead_fraction=dead, zero_code_fraction=zero, explained_variance=ev)
    if top == 0:
        collapsed.append("every code is zero: no unit responds to any input")
    else:
        if dead > DEAD_COLLAPSED:
            collapsed.append(f"{_fraction(dead)} of its units never fire")
        elif dead > DEAD_WARNING:
            warnings.append(f"{_fraction(dead)} of its units never fire")
        if zero > ZERO_CODES_COLLAPSED:
            collapsed.append(f"{_fraction(zero)} of the inputs get an all-zero code")
    if math.isfinite(ev) and ev < EV_COLLAPSED:
        collapsed.append(f"its reconstruction explains {100 * ev:.1f} % of the variance: no "
                         f"better than the data's mean")
    if initial_filters is not None:
        now = model.filters(model.default_filter_kind()).detach().cpu().numpy()
        start = np.asarray(initial_filters, dtype=np.float64)
        if start.shape == now.shape:
            unchanged = _unchanged_fraction(start, now)
            numbers["unchanged_filter_fraction"] = unchanged
            if unchanged > UNCHANGED_COLLAPSED:
                collapsed.append(f"{_fraction(unchanged)} of its filters are still their random "
                                 f"start")
    if collapsed:
        return Health("collapsed", collapsed + warnings, numbers)
    return Health("warning" if warnings else "healthy", warnings, numbers)


def _unchanged_fraction(start: np.ndarray, now: np.ndarray) -> float:
    """Fraction of filters whose correlation with their own start is ≥ `UNCHANGED_CORR`."""
    a = start.reshape(start.shape[0], -1)
    b = now.reshape(now.shape[0], -1).astype(np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    corr = np.where(denom > 0, (a * b).sum(1) / np.where(denom > 0, denom, 1.0), 1.0)
    return float((corr >= UNCHANGED_CORR).mean())
