"""The large-map recipe is made of valid settings, and its benchmarks return finite figures
(run here at tiny sizes: the real recipe takes 4–5 minutes on one CPU thread)."""

import math

import torch

from sparse_models.large_map import (
    LARGE_MAP,
    REVIVAL_ONLY_OVERRIDES,
    bench_large_map,
    bench_localisation,
    recipe,
)
from sparse_models.models import get_entry
from sparse_models.presets import build_run_config

TINY = {**get_entry("topographic").model_cls.tiny, "model.group.map_shape": [4, 4],
        "model.revive_every": 2, "model.revive_until": 4, "data.patch_size": 6,
        "train.device": "cpu"}
TINY_SC = {"model.n_units": 8, "model.n_iter": 5, "train.steps": 2, "train.batch_size": 32,
           "train.log_every": 1, "train.snapshot_every": 1}


def test_recipe_is_valid_settings_for_a_large_map():
    cfg = build_run_config("topographic", LARGE_MAP)
    rows, cols = cfg.model_config.group.map_shape
    assert rows >= 32 and cols >= 32
    assert cfg.model_config.revive_every > 0
    assert cfg.data.patch_size == LARGE_MAP["data.patch_size"]
    assert recipe(3)["model.seed"] == 3 and recipe(3)["train.seed"] == 3


def test_bench_large_map_returns_finite_figures():
    torch.set_num_threads(1)
    out = bench_large_map(seed=0, overrides=TINY)
    for key in ("live_fraction", "neighbour_orientation_diff_deg", "explained_variance",
                "column_spacing", "periods_across", "pinwheel_count", "train_seconds",
                "envelope_width_px"):
        assert isinstance(out[key], int | float) and math.isfinite(out[key]), key
    assert out["map_shape"] == (4, 4)
    assert math.isclose(out["periods_across"], 4 / out["column_spacing"])


def test_bench_localisation_returns_both_widths_and_their_ratio():
    torch.set_num_threads(1)
    out = bench_localisation(seed=0, overrides=TINY, sparse_coding_overrides=TINY_SC)
    for key in ("topographic_width_px", "sparse_coding_width_px", "ratio"):
        assert math.isfinite(out[key]) and out[key] > 0, key
    assert math.isclose(out["ratio"], out["topographic_width_px"] / out["sparse_coding_width_px"])
    assert out["patch_size"] == 6 and out["topographic_units"] == 16


def test_recipe_uses_retinotopic_apertures_on_a_non_wrapping_map():
    cfg = build_run_config("topographic", LARGE_MAP).model_config
    rows, cols = cfg.group.map_shape
    side_px = LARGE_MAP["data.patch_size"]
    assert cfg.aperture > 0 and cfg.zero_mean and not cfg.group.wrap
    # expected column spacing ≈ aperture diameter × map units per pixel: at most half the map
    assert 2 * cfg.aperture * rows / side_px <= rows / 2
    old = build_run_config("topographic", recipe(0, REVIVAL_ONLY_OVERRIDES)).model_config
    assert old.aperture == 0 and old.group.wrap
