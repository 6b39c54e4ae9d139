"""`python -m sparse_models bench sweep`: its figures, targets and printout (a quick real run
is in test_sweep.py, on that module's local Ray)."""

from __future__ import annotations

import math

from sparse_models.bench_sweep import TARGETS, format_sweep_bench, verdicts


def _fake(loop_s: float, sweep_s: float, inside: float) -> dict:
    n = 8
    return {"n_trials": n, "workers": 2, "loop_s": loop_s, "sweep_s": sweep_s,
            "ray_start_s": 5.0, "loop_trial_s": [loop_s / n] * n,
            "worker_trial_s": [inside] * n, "overhead_s": (sweep_s * 2 - inside * n) / n,
            "speedup": loop_s / sweep_s, "speedup_with_start": loop_s / (sweep_s + 5.0),
            "first_dispatch_s": [4.0, 4.2], "later_dispatch_s": [0.003] * 6,
            "return_s": [0.002] * 8,
            "load_before": "0.10 / 0.20 / 0.30", "load_after": "1.00 / 0.50 / 0.30",
            "quick": False, "cores": 2, "plain_s": 20.0, "plain_trial_s": [4.5] * n,
            "ceiling": loop_s / 20.0}


def test_targets_and_their_edges() -> None:
    good = _fake(40.0, 22.0, 5.0)  # overhead (44 − 40) / 8 = 0.5 s, speed-up 1.82
    assert verdicts(good) == {"overhead_s": True, "speedup": True}
    slow = _fake(40.0, 30.0, 5.0)  # overhead 2.5 s, speed-up 1.33
    assert verdicts(slow) == {"overhead_s": False, "speedup": False}
    edge = {**good, "overhead_s": TARGETS["overhead_s"], "speedup": TARGETS["speedup"]}
    assert all(verdicts(edge).values())
    assert not any(verdicts({**good, "overhead_s": math.nan, "speedup": None}).values())


def test_the_printout_names_both_walls_the_overhead_and_the_speed_up() -> None:
    text = "\n".join(format_sweep_bench(_fake(40.0, 22.0, 5.0)))
    assert "(a) plain loop" in text and "40.0 s" in text
    assert "(b) sweep on Ray, 2 workers" in text and "22.0 s" in text
    assert "Ray overhead per trial" in text and "0.50 s  ✔" in text
    assert "1.82 ×  ✔" in text and "targets met: 2 of 2" in text
    assert "load average 0.10 / 0.20 / 0.30 before" in text
    assert "first trial waits  4.10 s" in text and "later trials 3 ms" in text
    # the reference: 40 / 20 = 2.00× for plain processes, of which the sweep's 1.82× is 91 %
    assert "(c) reference: 2 plain processes" in text and "20.0 s" in text
    assert "2.00 ×; the sweep gets 91% of it" in text
