"""Sparsity statistics of codes `z: (B, K)` (B samples, K units), numpy arrays or tensors.

- population sparsity per sample: L0 (how many units are active) and Hoyer's sparseness
  (√K − ‖z‖₁/‖z‖₂)/(√K − 1) ∈ [0, 1] (Hoyer, JMLR 2004): 1 for one active unit, 0 for all equal;
- lifetime sparsity per unit: firing frequency, the fraction of samples on which it is active;
  units that never fire are dead;
- group (pool) norms √(Σᵢ P[j, i] zᵢ²), the quantity the group-sparsity penalty sums
  (Kavukcuoglu et al., CVPR 2009; Hyvärinen & Hoyer 2001).

Activity rule, one for every run and every view (`activity_threshold`): a unit is active on a
sample when |z| > threshold, where a run's threshold is REL_THRESHOLD (10⁻³) times the largest |z|
it produces on its first ACTIVITY_SAMPLES training samples (0 when those codes are all zero), so
tiny non-zero values left by a solver do not count. The report, the Sparsity page and its
comparison table all measure a run by this rule on those same samples, so the same run shows the
same numbers everywhere; two runs compared side by side each keep their own threshold. Pass
`threshold=0.0` for the exact L0.

A convolutional model gives many code rows per image (one per position), so its first
ACTIVITY_SAMPLES rows would be the positions of its first image or two, where a map that happens
to be silent there looks dead. For such a model the samples are ACTIVITY_SAMPLES (image, position)
rows spread evenly over the codes of its first ACTIVITY_IMAGES training images (`spread_first`
puts them first).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .orientation import as_numpy

REL_THRESHOLD = 1e-3  # activity threshold, relative to the run's largest |z| on its fixed samples
ACTIVITY_SAMPLES = 2000  # the fixed samples: a run's first ACTIVITY_SAMPLES training samples
ACTIVITY_IMAGES = 500  # images whose code rows a convolutional model's samples are spread over
ACTIVITY_RULE = (  # the rule in words, for the pages
    f"a unit counts as active on a patch when |z| > 10⁻³ × the largest |z| the run produces on "
    f"the first {ACTIVITY_SAMPLES} of its training patches")
CONV_ACTIVITY_RULE = (  # what "patch" means for a model with many code rows per image
    f"its {ACTIVITY_SAMPLES} patches are (image, position) code rows spread evenly over the "
    f"positions of its first {ACTIVITY_IMAGES} training images")


def _codes(codes: np.ndarray | torch.Tensor) -> np.ndarray:
    z = as_numpy(codes)
    if z.ndim != 2:
        raise ValueError(f"codes must have shape (B, K), got {tuple(z.shape)}")
    return z


def activity_inputs(rows_per_sample: int) -> int:
    """How many of a run's first training inputs its activity samples come from: ACTIVITY_SAMPLES,
    or ACTIVITY_IMAGES for a model that gives several code rows per input."""
    return ACTIVITY_SAMPLES if rows_per_sample == 1 else ACTIVITY_IMAGES


def spread_first(codes: np.ndarray | torch.Tensor, rows_per_sample: int
                 ) -> np.ndarray | torch.Tensor:
    """Codes (B·S, K) of inputs that give S = rows_per_sample rows each, reordered so that the
    first ACTIVITY_SAMPLES rows are spread evenly over all B·S (the rows at round(linspace(0,
    B·S − 1, ACTIVITY_SAMPLES))), the others following in their order: `activity_samples` then
    takes rows from every input, not the first input's positions. Unchanged when S = 1."""
    n = codes.shape[0]
    if rows_per_sample == 1 or n <= ACTIVITY_SAMPLES:
        return codes
    first = np.unique(np.linspace(0, n - 1, ACTIVITY_SAMPLES).round().astype(np.int64))
    rest = np.setdiff1d(np.arange(n), first, assume_unique=True)
    order = np.concatenate([first, rest])
    return codes[torch.from_numpy(order)] if isinstance(codes, torch.Tensor) else codes[order]


def activity_samples(codes: np.ndarray | torch.Tensor) -> np.ndarray:
    """The rows the activity rule is measured on: the first ACTIVITY_SAMPLES of codes (B, K)
    given in the order of the run's training samples. (min(B, ACTIVITY_SAMPLES), K)."""
    return _codes(codes)[:ACTIVITY_SAMPLES]


def activity_threshold(codes: np.ndarray | torch.Tensor) -> float:
    """The activity threshold of a run, the one rule every view uses: REL_THRESHOLD · max |z|
    over `activity_samples(codes)`, 0 when they are all zero.

    codes: (B, K), the run's codes of its training samples in their order; only the first
    ACTIVITY_SAMPLES rows count, so passing more rows (the report encodes 5000) gives the same
    threshold as passing exactly those.
    """
    z = activity_samples(codes)
    return float(REL_THRESHOLD * np.abs(z).max()) if z.size else 0.0


default_threshold = activity_threshold  # the name older code imports


def _active(z: np.ndarray, threshold: float | None) -> np.ndarray:
    t = activity_threshold(z) if threshold is None else float(threshold)
    return np.abs(z) > t


def activation_histogram(
    codes: np.ndarray | torch.Tensor,
    bins: int | np.ndarray = 50,
    active_only: bool = False,
    threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of all code values. Returns `(counts: (n_bins,), edges: (n_bins + 1,))`.

    With `active_only`, only values with |z| > threshold are counted (the many exact zeros of a
    sparse code otherwise dwarf everything else).
    """
    z = _codes(codes)
    values = z[_active(z, threshold)] if active_only else z.ravel()
    return np.histogram(values, bins=bins)


def firing_frequency(
    codes: np.ndarray | torch.Tensor, threshold: float | None = None
) -> np.ndarray:
    """Lifetime sparsity: fraction of samples on which each unit is active. (K,) in [0, 1]."""
    z = _codes(codes)
    return _active(z, threshold).mean(axis=0)


def active_count(codes: np.ndarray | torch.Tensor, threshold: float | None = None) -> np.ndarray:
    """L0 per sample: number of active units. (B,) int."""
    z = _codes(codes)
    return _active(z, threshold).sum(axis=1).astype(np.int64)


def group_norms(
    codes: np.ndarray | torch.Tensor, pool_matrix: np.ndarray | torch.Tensor
) -> np.ndarray:
    """Pool norms √(Σᵢ P[j, i] zᵢ²). codes (B, K), pool_matrix (n_pools, K) -> (B, n_pools)."""
    z = _codes(codes)
    P = as_numpy(pool_matrix)
    if P.ndim != 2 or P.shape[1] != z.shape[1]:
        raise ValueError(f"pool matrix {tuple(P.shape)} does not match {z.shape[1]} code units")
    return np.sqrt(np.maximum(z**2 @ P.T, 0.0))


def dead_units(
    codes: np.ndarray | torch.Tensor, min_frequency: float = 0.0, threshold: float | None = None
) -> np.ndarray:
    """Units whose firing frequency is at most `min_frequency` (default: never active). (K,) bool."""
    return firing_frequency(codes, threshold) <= min_frequency


def hoyer_sparsity(codes: np.ndarray | torch.Tensor) -> np.ndarray:
    """Hoyer's sparseness per sample, (B,) in [0, 1]; NaN for an all-zero sample or K = 1."""
    z = _codes(codes)
    k = z.shape[1]
    l1 = np.abs(z).sum(axis=1)
    l2 = np.sqrt((z**2).sum(axis=1))
    if k < 2:
        return np.full(z.shape[0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(l2 > 0, (math.sqrt(k) - l1 / l2) / (math.sqrt(k) - 1), np.nan)


def pool_clustering(codes: np.ndarray | torch.Tensor, pool_matrix: np.ndarray | torch.Tensor,
                    threshold: float, n_perm: int = 5, seed: int = 0) -> dict[str, float]:
    """Do active units cluster in pools? (Does grouping group? An open question of the lecture.)

    `active_pools`: pools with norm > threshold per sample (mean). `scattered_pools`: the same
    with the units' places on the map shuffled (one permutation for all samples, so every unit
    keeps its own activity), mean over `n_perm` permutations: what the same activity would
    switch on with no grouping. `ratio` = active / scattered, < 1 when activity clusters
    (nan when nothing is active). codes: (B, K), pool_matrix: (J, K).
    """
    z = _codes(codes)
    P = as_numpy(pool_matrix).astype(z.dtype, copy=False)
    active = float((group_norms(z, P) > threshold).sum(axis=1).mean())
    rng = np.random.default_rng(seed)
    scattered = float(np.mean([
        (group_norms(z[:, rng.permutation(z.shape[1])], P) > threshold).sum(axis=1).mean()
        for _ in range(n_perm)]))
    return {"active_pools": active, "scattered_pools": scattered,
            "ratio": active / scattered if scattered > 0 else math.nan}


def sparsity_summary(
    codes: np.ndarray | torch.Tensor,
    pool_matrix: np.ndarray | torch.Tensor | None = None,
    threshold: float | None = None,
) -> dict[str, float | int | None]:
    """Scalar summary of a batch of codes (B, K); None where a value is undefined.

    `threshold` defaults to `activity_threshold(codes)` (the run's rule when codes are its own
    training samples in order); pass another run's codes with that run's own threshold.
    Keys: n_samples, n_units, threshold, mean_l0 (mean number of active units per sample, of
    n_units), mean_l0_fraction (mean L0 / K), zero_code_fraction (samples with no active unit),
    mean_l0_nonzero (mean L0 of the other samples), mean_firing_frequency, max_firing_frequency,
    dead_fraction, hoyer (mean over non-zero samples), mean_abs; with a pool matrix also n_pools,
    mean_active_pools (pools whose norm exceeds the threshold) and pool_hoyer (Hoyer's
    sparseness of the pool norms).
    """
    z = _codes(codes)
    t = activity_threshold(z) if threshold is None else float(threshold)
    freq = firing_frequency(z, t)
    l0 = active_count(z, t)
    some = l0[l0 > 0]
    out: dict[str, float | int | None] = {
        "n_samples": int(z.shape[0]),
        "n_units": int(z.shape[1]),
        "threshold": t,
        "mean_l0": float(l0.mean()) if z.size else None,
        "mean_l0_fraction": float(l0.mean() / z.shape[1]) if z.size else None,
        "zero_code_fraction": float((l0 == 0).mean()) if z.size else None,
        "mean_l0_nonzero": float(some.mean()) if some.size else None,
        "mean_firing_frequency": float(freq.mean()) if z.size else None,
        "max_firing_frequency": float(freq.max()) if z.size else None,
        "dead_fraction": float((freq <= 0).mean()) if z.size else None,
        "hoyer": _nanmean(hoyer_sparsity(z)),
        "mean_abs": float(np.abs(z).mean()) if z.size else None,
    }
    if pool_matrix is not None:
        g = group_norms(z, pool_matrix)
        out["n_pools"] = int(g.shape[1])
        out["mean_active_pools"] = float((g > t).sum(axis=1).mean()) if g.size else None
        out["pool_hoyer"] = _nanmean(hoyer_sparsity(g))
    return out


def _nanmean(a: np.ndarray) -> float | None:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None
