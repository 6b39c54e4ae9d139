"""The runs shipped in checkpoints/: loadable, small, made by our CLI, analysed, and good maps."""

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from sparse_models.data import data_config_dict
from sparse_models.training.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    SHIPPED_DIR,
    SNAPSHOTS_FILE,
    load_run,
)

SHIPPED = sorted(p for p in Path(SHIPPED_DIR).iterdir() if (p / "config.json").exists())


def test_there_are_shipped_runs():
    names = {p.name for p in SHIPPED}
    assert {"topographic-5x5", "topographic-3x3", "sparse-coding-l1", "drsae-mnist",
            "lista-mnist", "sparse-coding-mnist"} <= names


def test_shipped_drsae_run_classifies_and_has_both_kinds_of_unit():
    """Issue #12 on the run the DrSAE page opens with: test error on the bundled split, and
    part-units beside categorical ones (the paper's angle thresholds, live units only)."""
    run = load_run(Path(SHIPPED_DIR) / "drsae-mnist")
    (result,) = run.read_analysis()["entries"].values()
    assert result["test_error"] <= 0.05
    assert result["part_units"] >= 10 and result["categorical_units"] >= 10
    # categorical units lean on the classifier, as in the paper
    assert result["categorical_mean_c_norm"] > 2 * result["part_mean_c_norm"]


def test_shipped_lista_run_encodes_for_the_shipped_teacher():
    import torch

    from sparse_models.models.lista import find_teacher, teacher_dictionary

    run = load_run(Path(SHIPPED_DIR) / "lista-mnist")
    path = find_teacher(run.config.model_config.teacher)
    assert path is not None and path.resolve() == (Path(SHIPPED_DIR) / "sparse-coding-mnist").resolve()
    assert torch.equal(run.model.D.detach(), teacher_dictionary(path)[0])


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_run_is_small_complete_and_self_describing(path):
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size <= 5 * 2**20, f"{path.name} is {size / 2**20:.1f} MB"
    run = load_run(path)
    assert run.shipped and run.state == "completed"
    assert run.config.command.startswith("python -m sparse_models train")
    assert "--shipped" in run.config.command
    f = run.filters()
    c, h, w = run.model.input_shape
    # (N, C, h, w): whole patches, or local fields; a stacked layer's filters act on the
    # channels of its input (layer 1's pooled maps), not on the image's
    c = getattr(run.model.config, "in_channels", c)
    assert f.ndim == 4 and f.shape[1] == c
    assert f.shape[2] <= h and f.shape[3] <= w
    shape, _ = run.layout.map_shape()
    if shape is not None:
        assert f.shape[0] == shape[0] * shape[1]
    steps, snaps, kind = run.snapshots()
    if run.config.train.snapshot_every:  # a seed repeat may be shipped without its replay
        assert len(steps) >= 2 and snaps.shape[1:] == f.shape
        assert kind == run.model.default_filter_kind()
    entries = run.read_analysis().get("entries", {})
    assert entries, "shipped runs carry their analysis (the app cannot write there)"
    assert not (path / CHECKPOINT_FILE).exists(), "shipped runs are final: no resume checkpoint"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_run_is_in_the_current_format(path):
    """What `python -m sparse_models train ... --shipped` writes now (checkpoints/README.md):
    format-2 config.json, (S, N, C, h, w) snapshots with their filter kind, and the analysis
    cached under the key the app looks up (so it is never recomputed: it cannot be written)."""
    from sparse_models.analysis.cached import _key
    from sparse_models.analysis.report import DEFAULT_SMOOTH_SIGMA

    raw = json.loads((path / CONFIG_FILE).read_text())
    assert raw["format_version"] == FORMAT_VERSION, "re-make the shipped runs with the CLI"
    run = load_run(path)
    assert raw["data"] == data_config_dict(run.config.data)  # only its source's settings
    assert "eval_every" in raw["train"]
    if run.config.train.snapshot_every:  # a seed repeat may be shipped without its replay
        with safe_open(str(path / SNAPSHOTS_FILE), framework="pt") as f:
            assert f.get_slice("filters").get_shape()[1:] == list(run.filters().shape)
            assert f.metadata()["filter_kind"] == run.model.default_filter_kind()
    entries = run.read_analysis()["entries"]
    key = _key(run, 5000, DEFAULT_SMOOTH_SIGMA)
    assert key in entries, f"no analysis under {key!r}; it has {sorted(entries)}"
    for why in ("why_no_map", "why_no_orientation", "why_no_pools", "why_no_test"):
        assert why in entries[key], why
    # e.g. plain sparse coding has no map, and its analysis says so
    assert entries[key]["why_no_map"] == (run.layout.map_shape()[1] or None)


def test_default_topographic_run_is_a_smooth_map_of_oriented_filters():
    """Issue targets for the default config, checked on the shipped run that it made."""
    run = load_run(Path(SHIPPED_DIR) / "topographic-5x5")
    (result,) = run.read_analysis()["entries"].values()
    assert result["live_fraction"] >= 0.95
    assert result["mean_selectivity"] >= 0.4
    assert result["neighbour_orientation_diff_deg"] <= 20.0
    assert result["explained_variance"] >= 0.85
    assert result["pinwheel_count"] >= 2  # orientation domains meet at pinwheels


def test_cached_analysis_of_a_shipped_run_is_what_the_code_computes_now():
    from sparse_models.analysis.cached import analyze_run

    run = load_run(Path(SHIPPED_DIR) / "topographic-5x5")
    (key, cached), = run.read_analysis()["entries"].items()
    fresh = analyze_run(run, use_cache=False)
    for k in ("live_fraction", "mean_selectivity", "neighbour_orientation_diff_deg",
              "explained_variance", "pinwheel_count"):
        assert fresh[k] == pytest.approx(cached[k], rel=1e-4, abs=1e-6), k
