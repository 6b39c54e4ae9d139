"""`python -m sparse_models bench tree`: the side-by-side table and its targets."""

import math

from sparse_models.bench_tree import CONTROL, TARGETS, bench_tree, format_tree_bench, verdicts
from sparse_models.models.lateral import Lateral


def _fake(share, ratio, wall):
    return {"path_share": share, "tree_active_share": 0.8, "mean_active_units": 2.0,
            "parent_child_similarity": None if ratio is None else 0.3 * ratio, "all_pairs_similarity": 0.3,
            "parent_child_similarity_ratio": ratio, "explained_variance": 0.7,
            "branches_under_1pct": 3, "wall_s": wall, "steps": 300, "batch_size": 256}


def test_targets_are_checked_on_the_default_column_only():
    good = _fake(0.95, 1.5, 20.0)
    bad = _fake(0.40, 0.8, 99.0)
    assert verdicts({"default": good, "control": bad}) == {
        "path_share": True, "similarity_ratio": True, "train_s": True}
    assert verdicts({"default": bad, "control": good}) == {
        "path_share": False, "similarity_ratio": False, "train_s": False}
    # the edges: exactly at a target passes; a missing figure fails
    edge = _fake(TARGETS["path_share"], TARGETS["similarity_ratio"], TARGETS["train_s"])
    assert all(verdicts({"default": edge, "control": edge}).values())
    nan = _fake(math.nan, None, math.nan)
    assert not any(verdicts({"default": nan, "control": good}).values())


def test_the_table_prints_both_columns_with_marks():
    lines = format_tree_bench({"default": _fake(0.95, 0.8, 20.0),
                               "control": _fake(0.40, 1.0, 18.0),
                               "summary": "4 trees", "threads": 2, "quick": False})
    text = "\n".join(lines)
    assert "default" in lines[1] and "S = 0" in lines[1]
    share = next(x for x in lines if x.lstrip().startswith("path share"))
    assert "95.0%" in share and "40.0%" in share and "✔" in share
    ratio = next(x for x in lines if x.lstrip().startswith("ratio"))
    assert "0.80" in ratio and "1.00" in ratio and "✘" in ratio
    assert "targets met: 2 of 3" in text
    nan = format_tree_bench({"default": _fake(math.nan, None, 1.0),
                             "control": _fake(0.5, 1.0, 1.0), "quick": True})
    assert "—" in next(x for x in nan if x.lstrip().startswith("path share"))
    assert "quick" in nan[0]


def test_bench_tree_runs_end_to_end_on_a_tiny_config():
    res = bench_tree(overrides=dict(Lateral.tiny))
    d, c = res["default"], res["control"]
    assert d["steps"] == c["steps"] == Lateral.tiny["train.steps"]
    for q in (d, c):
        assert q["tree_units"] == 8  # 2 trees of depth 2, branching 3: 1 + 3 units each
        assert 0.0 <= q["path_share"] <= 1.0 or math.isnan(q["path_share"])
        assert q["wall_s"] > 0
    assert set(CONTROL) == {"model.s_scale", "model.learn_s"}
    lines = format_tree_bench(res)
    assert lines[-1].startswith("  targets met:")
    assert any("✔" in x or "✘" in x for x in lines)
