"""What a trained DrSAE's units do (Rolfe & LeCun, ICLR 2013, section 4): plain functions on
arrays, and `drsae_summary` tying them to a model with E, S, D, C, `iterates` and
`class_logits`.

- Part-units: the angle between a unit's encoder row Eᵢ and decoder column Dᵢ is small (< 0.5
  rad); they behave as in ISTA (S − I row small), their decoders are pen strokes.
- Categorical units: the angle is large (> 0.7 rad); strong recurrent input ‖(S − I)ᵢ‖ and
  strong classifier weights ‖Cᵢ‖; often first active at iteration 2 (off at t = 1, on at t = 2);
  decoders are whole-digit prototypes. Both thresholds are the paper's heuristics (settings).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .orientation import as_numpy


def encoder_decoder_angles(E: Any, D: Any) -> np.ndarray:
    """Angle (radians, 0..π) between each unit's encoder row and decoder column.
    E: (N, P), D: (P, N) -> (N,); a zero row or column gives π/2."""
    e = as_numpy(E).astype(np.float64)
    d = as_numpy(D).astype(np.float64).T
    ne, nd = np.linalg.norm(e, axis=1), np.linalg.norm(d, axis=1)
    denom = ne * nd
    cos = np.where(denom > 0, (e * d).sum(1) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def unit_kinds(angles: Any, part_angle: float = 0.5,
               categorical_angle: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """(part, categorical) boolean masks (N,): angle < part_angle, angle > categorical_angle."""
    a = as_numpy(angles)
    return a < part_angle, a > categorical_angle


def recurrent_norms(S: Any) -> np.ndarray:
    """‖(S − I)ᵢ‖ per unit i (row i: what the other units and itself add to unit i beyond
    its own previous value). S: (N, N) -> (N,)"""
    s = as_numpy(S).astype(np.float64)
    return np.linalg.norm(s - np.eye(s.shape[0]), axis=1)


def classifier_norms(C: Any) -> np.ndarray:
    """‖Cᵢ‖: the norm of unit i's weights to all the classes. C: (n_classes, N) -> (N,)"""
    return np.linalg.norm(as_numpy(C).astype(np.float64), axis=0)


def late_onset_share(iterates: Any) -> np.ndarray:
    """Per unit, the share of inputs on which it is off at t = 1 and on at t = 2.
    iterates: (T, B, N) codes after each iteration -> (N,); zeros when T < 2."""
    z = as_numpy(iterates)
    if z.shape[0] < 2 or z.shape[1] == 0:
        return np.zeros(z.shape[-1])
    return ((z[0] <= 0) & (z[1] > 0)).mean(0).astype(np.float64)


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    t = as_numpy(y_true).astype(np.int64).ravel()
    p = as_numpy(y_pred).astype(np.int64).ravel()
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def error_rate(y_true: Any, y_pred: Any) -> float:
    t, p = as_numpy(y_true).ravel(), as_numpy(y_pred).ravel()
    return float((t != p).mean()) if t.size else math.nan


def class_averages(x: Any, y: Any, n_classes: int) -> np.ndarray:
    """The mean input of each class (n_classes, P), to set categorical decoders beside; NaN rows
    for a class with no example."""
    xs, ys = as_numpy(x).astype(np.float64), as_numpy(y).astype(np.int64)
    out = np.full((n_classes, xs.shape[1]), np.nan)
    for k in range(n_classes):
        if (ys == k).any():
            out[k] = xs[ys == k].mean(0)
    return out


@torch.no_grad()
def predictions(model: Any, x: torch.Tensor, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(iterates (T, B, N), predicted classes (B,)) of a DrSAE-like model on x: (B, P)."""
    its, preds = [], []
    for s in range(0, x.shape[0], batch_size):
        it = model.iterates(x[s:s + batch_size])
        its.append(it.cpu())
        preds.append(model.class_logits(it[-1]).argmax(-1).cpu())
    return torch.cat(its, 1).numpy(), torch.cat(preds).numpy()


def unit_measures(model: Any, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per unit (N,): `angle`, `part`, `categorical` (masks, the model's thresholds),
    `s_norm` ‖(S − I)ᵢ‖, `c_norm` ‖Cᵢ‖, `late_onset` (share of x: off at t = 1, on at t = 2),
    `activity` (share of x on which it is on at t = T)."""
    cfg = model.config
    angles = encoder_decoder_angles(model.E.detach(), model.D.detach())
    part, cat = unit_kinds(angles, cfg.part_angle, cfg.categorical_angle)
    its, _ = predictions(model, x)
    return {"angle": angles, "part": part, "categorical": cat,
            "s_norm": recurrent_norms(model.S.detach()),
            "c_norm": classifier_norms(model.C.detach()),
            "late_onset": late_onset_share(its),
            "activity": (its[-1] > 0).mean(0).astype(np.float64)}


SUMMARY_KEYS = (
    "part_units", "categorical_units", "dead_units", "part_angle", "categorical_angle", "median_angle",
    "part_mean_s_norm", "categorical_mean_s_norm", "part_mean_c_norm",
    "categorical_mean_c_norm", "part_late_onset_share", "categorical_late_onset_share",
)


def _mean(v: np.ndarray, mask: np.ndarray) -> float | None:
    return float(v[mask].mean()) if mask.any() else None


def drsae_summary(model: Any, x: torch.Tensor) -> dict[str, Any]:
    """The report's DrSAE numbers on inputs x: (B, P): counts of part and categorical units at
    the model's thresholds among the units active on some input of x (`dead_units`: the others),
    the median angle of those, and the mean ‖S − I‖, ‖C‖ and late-onset share of each kind
    (None for a kind with no unit)."""
    m = unit_measures(model, x)
    # A unit that never fires keeps its initial E ∥ D (no gradient reaches it): counted apart.
    live = m["activity"] > 0
    part, cat = m["part"] & live, m["categorical"] & live
    return {
        "part_units": int(part.sum()), "categorical_units": int(cat.sum()),
        "dead_units": int((~live).sum()),
        "part_angle": float(model.config.part_angle),
        "categorical_angle": float(model.config.categorical_angle),
        "median_angle": float(np.median(m["angle"][live])) if live.any() else None,
        "part_mean_s_norm": _mean(m["s_norm"], part),
        "categorical_mean_s_norm": _mean(m["s_norm"], cat),
        "part_mean_c_norm": _mean(m["c_norm"], part),
        "categorical_mean_c_norm": _mean(m["c_norm"], cat),
        "part_late_onset_share": _mean(m["late_onset"], part),
        "categorical_late_onset_share": _mean(m["late_onset"], cat),
    }
