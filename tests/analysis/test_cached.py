"""Cached run analysis: written once, reused, and redone when the run trains further."""

import json

from sparse_models.analysis.cached import REPORT_VERSION, analyze_run
from sparse_models.presets import build_run_config
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import create_run, load_run

TINY = {"data.n_patches": 300, "data.patch_size": 8, "model.group.map_shape": [6, 6],
        "model.group.size": 3, "train.batch_size": 64, "train.steps": 10}


def test_analysis_is_cached_per_step_count(tmp_path):
    cfg = build_run_config("topographic", TINY)
    run_dir = create_run(cfg, runs_dir=tmp_path, name="r")
    execute_run(cfg, run_dir)
    first = analyze_run(run_dir, max_samples=200)
    cache = json.loads((run_dir / "analysis.json").read_text())
    (key,) = cache["entries"]
    assert key == f"v={REPORT_VERSION};samples=200;smooth=1;step=10"
    # A second call reads the cache: prove it by planting a marker in it.
    cache["entries"][key]["marker"] = 1
    (run_dir / "analysis.json").write_text(json.dumps(cache))
    assert analyze_run(run_dir, max_samples=200)["marker"] == 1
    # Training further changes the key, so the analysis is redone, not served stale.
    bigger = build_run_config("topographic", {**TINY, "train.steps": 20})
    (run_dir / "config.json").write_text(json.dumps(bigger.to_dict()))
    execute_run(bigger, run_dir, resume=True)
    again = analyze_run(load_run(run_dir), max_samples=200)
    assert "marker" not in again and again.keys() == first.keys()
    assert len(json.loads((run_dir / "analysis.json").read_text())["entries"]) == 2


def test_an_entry_of_an_older_report_version_is_recomputed(tmp_path):
    cfg = build_run_config("topographic", TINY)
    run_dir = create_run(cfg, runs_dir=tmp_path, name="r")
    execute_run(cfg, run_dir)
    # What a cache written before the report had versions (and its why_* keys) looked like.
    old_key = "samples=200;smooth=1;step=10"
    (run_dir / "analysis.json").write_text(json.dumps({"entries": {old_key: {"marker": 1}}}))
    result = analyze_run(run_dir, max_samples=200)
    assert "marker" not in result and "why_no_map" in result
    entries = json.loads((run_dir / "analysis.json").read_text())["entries"]
    # the stale entry is dropped (never read again); the current one is written
    assert set(entries) == {f"v={REPORT_VERSION};samples=200;smooth=1;step=10"}


def test_a_run_with_a_held_out_split_is_evaluated_on_it(tmp_path):
    cfg = build_run_config("topographic", {**TINY, "data.source": "gratings", "data.n_test": 50})
    run_dir = create_run(cfg, runs_dir=tmp_path, name="r")
    execute_run(cfg, run_dir)
    result = analyze_run(run_dir, max_samples=200)
    assert result["why_no_test"] is None and result["test_samples"] == 50
    assert "test_loss" in result and "test_explained_variance" in result
    plain = analyze_run(_plain_run(tmp_path), max_samples=200)
    assert plain["why_no_test"] == "the data has no held-out split" and "test_loss" not in plain


def _plain_run(tmp_path):
    cfg = build_run_config("topographic", {**TINY, "data.source": "gratings"})
    run_dir = create_run(cfg, runs_dir=tmp_path, name="plain")
    execute_run(cfg, run_dir)
    return run_dir
