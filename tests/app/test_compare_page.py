"""AppTest of the Compare page: a what-if reads child − parent, says how the runs are related and
how long each trained, draws both loss curves and a map of how much each filter changed, keeps its
pinwheel numbers at the slider's σ, and leaves out (and names) measures that do not apply.

Tiny runs are trained once per module with the CLI into a private runs folder
($SPARSE_LAB_RUNS): a topographic parent, a what-if child started from its weights with another
pool size, fewer steps and a held-out split, an unrelated topographic run and plain sparse
coding.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_ui.testing import cli_train, open_app, private_runs
from app_ui.widgets import fmt
from sparse_models.training.runs import load_run

PAGE = "../pages/compare.py"
TIMEOUT = 90  # seconds per script run: the first imports torch and analyses four runs
TINY = ["data.n_patches=512", "train.batch_size=64", "train.log_every=5",
        "train.snapshot_every=10", "train.threads=1"]
MAP = "model.group.map_shape=[8,8]"
PARENT, CHILD, OTHER, SC = "cmp-parent", "cmp-child", "cmp-other", "cmp-sc"
ODD = "sc__bold__"  # a legal run name that Markdown would turn into bold text
PARENT_STEPS, CHILD_STEPS = 40, 20
POOL_ROWS = {"active pools per patch", "Hoyer sparseness of pool norms",
             "filter similarity within / between pools"}
MAP_ROWS = {"neighbour orientation difference (°)", "column spacing Λ", "pinwheels",
            "pinwheels per Λ² (V1: ≈ π)", "… of the shuffled map"}
PINWHEEL_ROWS = {"pinwheels": "count", "pinwheels per Λ² (V1: ≈ π)": "density",
                 "… of the shuffled map": "shuffled_density"}


@pytest.fixture(scope="module")
def cmp_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with private_runs(tmp_path_factory.mktemp("compare_runs")) as runs:

        def train(model: str, name: str, *settings: str, init_from: Path | None = None) -> None:
            cli_train(runs, model, name, [*TINY, *settings], init_from)

        train("topographic", PARENT, MAP, "model.group.size=5", f"train.steps={PARENT_STEPS}")
        # The what-if: the parent's weights, 3×3 pools instead of 5×5, fewer steps, and a
        # held-out split whose evaluations ("split": "test" lines) must stay out of the
        # training curve.
        train("topographic", CHILD, "model.group.size=3", f"train.steps={CHILD_STEPS}",
              "data.n_test=64", "train.eval_every=10", init_from=runs / PARENT)
        train("topographic", OTHER, MAP, "model.group.size=5", "model.seed=7",
              f"train.steps={CHILD_STEPS}")
        train("sparse_coding", SC, "model.n_units=64", f"train.steps={CHILD_STEPS}")
        shutil.copytree(runs / SC, runs / ODD)
        yield runs


def compare(a: str, b: str, **query: str) -> AppTest:
    at = open_app(PAGE, TIMEOUT, compare_a=a, compare_b=b, **query)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="compare_a").value == a
    assert at.selectbox(key="compare_b").value == b
    return at


def raw_texts(at: AppTest) -> str:
    """The Markdown source of what the page says (info boxes, captions, headings, markdown)."""
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def texts(at: AppTest) -> str:
    """What a reader sees: the Markdown source with its backslash escapes resolved."""
    return re.sub(r"\\(.)", r"\1", raw_texts(at))


def charts(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by their key (the end of the element id)."""
    out = {}
    for c in at.get("plotly_chart"):
        key = c.proto.id.rsplit("-", 1)[-1]
        out[key] = json.loads(c.proto.spec)
    return out


def array(v) -> np.ndarray:
    """A figure's array: a JSON list, or Plotly's typed array {dtype, bdata, shape}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")])
        return a.astype(float)
    return np.asarray(v, dtype=float)


def table(at: AppTest) -> pd.DataFrame:
    found = [d for d in at.dataframe if "measure" == d.value.index.name]
    assert len(found) == 1, "no metrics table"
    return found[0].value


def metric_lines(runs: Path, name: str) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(s) for s in (runs / name / "metrics.jsonl").read_text().splitlines()
             if s.strip()]
    return ([r for r in lines if r.get("split") != "test"],
            [r for r in lines if r.get("split") == "test"])


# --- a what-if reads child − parent and says what it is -----------------------------------


@pytest.mark.parametrize(("a", "b", "column"), [(CHILD, PARENT, "child − parent (A − B)"),
                                                (PARENT, CHILD, "child − parent (B − A)")])
def test_a_what_if_reads_child_minus_parent(cmp_runs: Path, a: str, b: str, column: str) -> None:
    at = compare(a, b)
    df = table(at)
    assert column in df.columns, list(df.columns)
    child = df[f"A: {a}" if a == CHILD else f"B: {b}"]
    parent = df[f"B: {b}" if a == CHILD else f"A: {a}"]
    signed = 0
    for measure in df.index:
        c, p, d = float(child[measure]), float(parent[measure]), float(df.loc[measure, column])
        # the shown numbers have 3 significant digits: allow for their rounding (each of c
        # and p is off by at most 0.5 % of itself, d by 0.5 % of d)
        scale = max(abs(c), abs(p))
        assert d == pytest.approx(c - p, abs=0.005 * (abs(c) + abs(p)) + 1e-9, rel=0.006), \
            measure
        if abs(c - p) > 0.02 * scale:
            assert np.sign(d) == np.sign(c - p), measure
            signed += 1
    assert signed >= 2  # enough clear differences that B − A would have been caught
    side_c, side_p = ("A", "B") if a == CHILD else ("B", "A")
    said = texts(at)
    assert (f"{side_c} ({CHILD}) was started from the weights of {side_p} ({PARENT})"
            in said)
    assert f"trained {CHILD_STEPS} steps of its own" in said
    steps = {PARENT: PARENT_STEPS, CHILD: CHILD_STEPS}
    assert (f"different numbers of steps**: A ({a}) {steps[a]}, B ({b}) {steps[b]}" in said)


def test_unrelated_runs_of_equal_length_read_b_minus_a_and_say_nothing_of_steps(
        cmp_runs: Path) -> None:
    at = compare(OTHER, CHILD)
    assert "B − A" in table(at).columns
    said = texts(at)
    assert "different numbers of steps" not in said
    assert f"B ({CHILD}) was started from the weights of {PARENT}, not from the other run" \
        in said
    assert f"A ({OTHER}) was started" not in said


# --- loss curves ---------------------------------------------------------------------------


def test_both_loss_curves_side_by_side_without_held_out_lines_in_them(cmp_runs: Path) -> None:
    at = compare(CHILD, PARENT)
    figs = charts(at)
    assert {"compare_loss_a", "compare_loss_b"} <= set(figs)
    assert len([k for k in figs if k.startswith("compare_loss_")]) == 2
    for key, name in (("compare_loss_a", CHILD), ("compare_loss_b", PARENT)):
        fig = figs[key]
        assert name in fig["layout"]["title"]["text"]
        traces = {t["name"]: t for t in fig["data"]}
        train, test = metric_lines(cmp_runs, name)
        assert train
        loss = traces["loss"]
        np.testing.assert_array_equal(array(loss["x"]), [r["step"] for r in train])
        np.testing.assert_allclose(array(loss["y"]), [r["loss"] for r in train], rtol=1e-6)
        if name == CHILD:
            assert test, "the child's data has a held-out split: its metrics need test lines"
            held = traces["held-out loss"]
            np.testing.assert_array_equal(array(held["x"]), [r["step"] for r in test])
            np.testing.assert_allclose(array(held["y"]), [r["loss"] for r in test], rtol=1e-6)
        else:
            assert "held-out loss" not in traces
    # the same axes on both sides, so the two runs can be read against each other
    assert figs["compare_loss_a"]["layout"]["xaxis"]["range"] == \
        figs["compare_loss_b"]["layout"]["xaxis"]["range"]
    assert figs["compare_loss_a"]["layout"]["yaxis"]["range"] == \
        figs["compare_loss_b"]["layout"]["yaxis"]["range"]


# --- how much each filter changed ------------------------------------------------------------


def test_a_change_map_is_drawn_for_a_parent_and_its_what_if_only(cmp_runs: Path) -> None:
    at = compare(CHILD, PARENT)
    figs = charts(at)
    assert "compare_change_map" in figs
    z = array(figs["compare_change_map"]["data"][0]["z"])
    before = load_run(cmp_runs / PARENT).filters().reshape(64, -1)
    after = load_run(cmp_runs / CHILD).filters().reshape(64, -1)
    r = np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(before, after, strict=True)])
    assert z.shape == (8, 8)
    np.testing.assert_allclose(z.ravel(), 1 - r, atol=1e-6)  # unit i in cell i
    said = texts(at)
    assert "How much each unit's filter changed" in said
    assert "1 − r, where r is the correlation between its decoder filter" in said
    for a, b in ((CHILD, OTHER), (PARENT, OTHER), (PARENT, SC)):
        at = compare(a, b)
        assert "compare_change_map" not in charts(at), (a, b)
        assert "How much each unit's filter changed" not in texts(at)


# --- the table follows the smoothing slider ---------------------------------------------------


def test_table_pinwheel_numbers_follow_the_smoothing_slider(cmp_runs: Path) -> None:
    from app_ui import analysis
    from app_ui.runs import run_stamp

    at = compare(CHILD, PARENT)
    before = table(at).loc[list(PINWHEEL_ROWS)].copy()
    at.slider(key="compare_smooth").set_value(0.0).run()
    assert not at.exception
    after = table(at).loc[list(PINWHEEL_ROWS)]
    assert not after.equals(before), "the pinwheel rows did not change with σ"
    figs = charts(at)
    for col, name, side in ((f"A: {CHILD}", CHILD, "a"), (f"B: {PARENT}", PARENT, "b")):
        path = str(cmp_runs / name)
        p = analysis.pinwheels(path, run_stamp(path), 0.0)
        for row, key in PINWHEEL_ROWS.items():
            assert after.loc[row, col] == fmt(p[key]), (name, row)
        # the number on the map is the number in the table
        assert figs[f"compare_map_{side}"]["layout"]["title"]["text"] == \
            f"{p['count']} pinwheels at σ = 0"
    assert "pinwheel numbers at σ = 0, the slider's" in texts(at)


# --- measures that do not apply ------------------------------------------------------------------


def test_a_map_and_a_plain_model_leave_out_pool_and_map_rows_and_say_why(cmp_runs: Path) -> None:
    at = compare(PARENT, SC)
    df = table(at)
    assert "B − A" in df.columns
    assert not (set(df.index) & (POOL_ROWS | MAP_ROWS)), list(df.index)
    assert {"explained variance", "Hoyer sparseness", "mean orientation selectivity"} <= \
        set(df.index)
    assert not (df == "—").any().any()  # no row of a measure one of them lacks
    said = texts(at)
    assert "Left out of the table, as they do not apply to both runs" in said
    pool_line = next(s for s in said.splitlines() if "active pools per patch" in s)
    assert f"{SC}: it has no pools" in pool_line
    map_line = next(s for s in said.splitlines() if "column spacing Λ" in s)
    assert f"{SC}: its units have no spatial layout" in map_line
    assert "pinwheel numbers at σ" not in said  # no pinwheel row is shown


def test_two_maps_keep_their_map_rows(cmp_runs: Path) -> None:
    at = compare(CHILD, PARENT)
    assert {"column spacing Λ", "pinwheels", "active pools per patch"} <= set(table(at).index)


# --- names from files are shown as they are --------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [(PARENT, ODD), (ODD, PARENT)])
def test_run_names_are_shown_as_text_not_markdown(cmp_runs: Path, a: str, b: str) -> None:
    at = compare(a, b)
    raw = raw_texts(at)
    assert r"sc\_\_bold\_\_" in raw
    assert "sc__bold__" not in raw.replace(r"sc\_\_bold\_\_", "")  # never unescaped
    assert f"A ({a}) {PARENT_STEPS if a == PARENT else CHILD_STEPS}, B ({b})" in texts(at)
