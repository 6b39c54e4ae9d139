"""`python -m sparse_models bench conv`: its table and marks (structure, not the targets)."""

import math

from sparse_models.bench_conv import TARGETS, bench_conv, format_conv_bench, verdicts


def _fake(wall, phase):
    out = {"wall_s": wall, "steps": 600, "batch_size": 32, "images_per_s": 320.0,
           "layer_explained_variance": 0.9, "explained_variance": 0.9, "summary": "x"}
    for kind in ("phase", "translation", "rotation"):
        out[f"{kind}_modulation_unpooled"] = 1.0
        out[f"{kind}_modulation_pooled"] = phase
        out[f"{kind}_invariance_ratio"] = phase
    return out


def test_targets_and_marks():
    good, bad = _fake(30.0, 0.2), _fake(99.0, 0.9)
    assert verdicts({"layer1": good, "stacked": good}) == dict.fromkeys(TARGETS, True)
    assert verdicts({"layer1": bad, "stacked": bad}) == dict.fromkeys(TARGETS, False)
    nan = _fake(math.nan, math.nan)
    assert not any(verdicts({"layer1": nan, "stacked": nan}).values())
    lines = format_conv_bench({"layer1": good, "stacked": bad, "threads": 1})
    text = "\n".join(lines)
    assert "layer 1" in lines[1] and "layer 2" in lines[1]
    ratio = next(x for x in lines if x.lstrip().startswith("phase: ratio"))
    assert "0.200" in ratio and "0.900" in ratio and "✔" in ratio
    assert "targets met: 2 of 3" in text and "mean nothing" not in text


def test_quick_run_trains_both_layers_and_says_its_marks_mean_nothing():
    res = bench_conv(quick=True)
    assert res["layer1"]["state"] == res["stacked"]["state"] == "completed"
    for layer in ("layer1", "stacked"):
        for key in ("wall_s", "images_per_s", "phase_invariance_ratio",
                    "layer_explained_variance"):
            assert key in res[layer], (layer, key)
    text = "\n".join(format_conv_bench(res))
    assert "mean nothing" in text and "meaningless with --quick" in text
