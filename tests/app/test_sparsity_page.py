"""AppTest of the Sparsity page: one measure, one number.

"Active units per patch" is the same number in the page's metric, in the group-vs-L1 table and in
the run's cached analysis; the all-zero codes are stated apart from the L0 histogram; fractions
are drawn in percent. Two tiny runs (a topographic map and plain sparse coding, with more
patches than the activity rule's fixed samples, so the analysis, which encodes more, would
differ if it measured on other samples) are trained once into a private runs folder.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_ui.testing import cli_train, open_app, private_runs
from sparse_models.analysis.cached import analyze_run
from sparse_models.analysis.sparsity import ACTIVITY_RULE, ACTIVITY_SAMPLES

PAGE = "../pages/sparsity.py"
TIMEOUT = 90  # seconds per script run: the first imports torch and encodes the patches
N_PATCHES = ACTIVITY_SAMPLES + 700  # more than the fixed samples, fewer than the report's 5000
TINY = [f"data.n_patches={N_PATCHES}", "train.batch_size=64", "train.log_every=5",
        "train.snapshot_every=10", "train.threads=1"]
UNITS = re.compile(r"^(\d+\.\d) of (\d+)$")  # how the page writes a mean count: "92.0 of 256"


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """'tiny-topo' (8×8 torus, 3×3 pools) and 'tiny-sc' (64 units) on the same patches, and
    'tiny-sc-seed1' (64 units) on other patches."""
    with private_runs(tmp_path_factory.mktemp("runs")) as runs:
        cli_train(runs, "topographic", "tiny-topo",
                  [*TINY, "model.group.map_shape=[8,8]", "model.group.size=3", "train.steps=60"])
        cli_train(runs, "sparse_coding", "tiny-sc", [*TINY, "model.n_units=64", "train.steps=20"])
        cli_train(runs, "sparse_coding", "tiny-sc-seed1",
                  [*TINY, "model.n_units=64", "train.steps=20", "data.seed=1"])
        yield runs


def sparsity_page(run: str, other: str | None = None) -> AppTest:
    query = {"run": run} | ({"sparsity_other": other} if other is not None else {})
    at = open_app(PAGE, TIMEOUT, **query)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="run").value == run
    return at


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return found[0]


def table_cell(at: AppTest, row: str, run: str) -> str:
    (table,) = [d.value for d in at.dataframe]
    (column,) = [c for c in table.columns if c.startswith(f"{run} (")]
    return str(table.loc[row, column])


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def figures(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {})
        out[title.get("text", "") if isinstance(title, dict) else str(title)] = spec
    return out


def values(data: object) -> np.ndarray:
    """An array of a figure's JSON: a plain list, or Plotly's typed array
    {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(data, dict) and "bdata" in data:
        a = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        shape = data.get("shape")
        return a.reshape([int(d) for d in str(shape).split(",")]) if shape else a
    return np.asarray(data, dtype=float)


def units(text: str) -> tuple[float, int]:
    m = UNITS.match(text)
    assert m, f"{text!r} is not written as 'N of K'"
    return float(m.group(1)), int(m.group(2))


def report_units(run_dir: Path) -> str:
    """The run's cached analysis (what the CLI's `analyze` and the Compare page read), written
    as the page writes a mean count."""
    report = analyze_run(run_dir)
    return f"{report['mean_l0']:.1f} of {report['n_units']}"


def test_one_number_on_the_page_in_the_table_and_in_the_report(lab_runs: Path) -> None:
    at = sparsity_page("tiny-topo")
    shown = metric(at, "Active units per patch")
    mean, k = units(shown)
    assert k == 64 and 0 < mean <= 64
    assert at.selectbox(key="sparsity_other").value == "tiny-sc"
    assert table_cell(at, "active units per patch", "tiny-topo") == shown
    assert report_units(lab_runs / "tiny-topo") == shown
    # the rule is stated in words, with this run's threshold, on the fixed samples
    caption = texts(at)
    assert ACTIVITY_RULE in caption
    threshold = analyze_run(lab_runs / "tiny-topo")["threshold"]
    assert f"(for tiny-topo: |z| > {threshold:.2g})" in caption


def test_a_compared_run_keeps_its_own_threshold(lab_runs: Path) -> None:
    """tiny-topo's column on tiny-sc's page reads as tiny-topo's own page, and the other way
    round: neither run is measured at the other's threshold."""
    topo = metric(sparsity_page("tiny-topo"), "Active units per patch")
    sc = metric(sparsity_page("tiny-sc"), "Active units per patch")
    on_sc = sparsity_page("tiny-sc", other="tiny-topo")
    assert table_cell(on_sc, "active units per patch", "tiny-topo") == topo
    assert table_cell(on_sc, "active units per patch", "tiny-sc") == sc
    assert report_units(lab_runs / "tiny-sc") == sc
    for row in ("patches with no active unit", "dead units"):
        assert table_cell(on_sc, row, "tiny-sc") != "—"


def test_a_run_on_other_patches_is_measured_at_its_own_threshold(lab_runs: Path) -> None:
    """tiny-sc-seed1 encodes tiny-topo's patches for the comparison, but its threshold is the
    rule's: from its own first training patches, as in its own analysis."""
    at = sparsity_page("tiny-topo", other="tiny-sc-seed1")
    assert at.selectbox(key="sparsity_other").value == "tiny-sc-seed1"
    row = "activity threshold (10⁻³ × the run's largest |z|)"
    for run in ("tiny-topo", "tiny-sc-seed1"):
        threshold = analyze_run(lab_runs / run)["threshold"]
        assert table_cell(at, row, run) == f"{threshold:.2g}"
    shown = metric(at, "Active units per patch")
    assert table_cell(at, "active units per patch", "tiny-topo") == shown
    assert units(table_cell(at, "active units per patch", "tiny-sc-seed1"))[1] == 64


def test_all_zero_codes_are_stated_and_left_out_of_the_l0_histogram(lab_runs: Path) -> None:
    at = sparsity_page("tiny-topo")
    report = analyze_run(lab_runs / "tiny-topo")
    share = f"{100 * report['zero_code_fraction']:.1f} %"
    assert metric(at, "Patches with no active unit") == share
    assert table_cell(at, "patches with no active unit", "tiny-topo") == share
    n = min(N_PATCHES, ACTIVITY_SAMPLES)
    zero = round(report["zero_code_fraction"] * n)
    assert f"{share} of the patches ({zero} of {n}) have no active unit at all" in texts(at)
    l0 = figures(at)["Active units per patch (L0), patches with at least one"]
    bars = l0["data"][0]
    assert values(bars["x"]).min() >= 1  # no bar for L0 = 0: those patches are the stated share
    # bars are % of all patches, so with the zero share they make 100 %
    assert values(bars["y"]).sum() + 100 * report["zero_code_fraction"] == pytest.approx(100.0)


def test_fractions_are_drawn_in_percent(lab_runs: Path) -> None:
    at = sparsity_page("tiny-topo")
    figs = figures(at)
    freq = figs["Firing frequency per unit (red: dead)"]
    assert freq["layout"]["yaxis"]["title"]["text"] == "% of patches"
    assert freq["layout"]["yaxis"]["ticksuffix"] == " %"
    rate = values(freq["data"][0]["y"])
    assert 1.0 < rate.max() <= 100.0  # percent, not a fraction of 1
    report = analyze_run(lab_runs / "tiny-topo")
    assert rate.mean() == pytest.approx(100 * report["mean_firing_frequency"])
    fmap = figs["Firing frequency on the unit map"]
    assert fmap["data"][0]["colorbar"]["title"]["text"] == "% of patches"
    assert values(fmap["data"][0]["z"]).max() > 1.0
    for title in ("Active units per patch (L0), patches with at least one",
                  "Pool norms, same pools", "Active units per patch (L0 ≥ 1)"):
        axis = figs[title]["layout"]["yaxis"]
        assert axis["title"]["text"].startswith("% of "), title
        assert axis["exponentformat"] == "none", title  # no "μ" or "m" on the ticks
    for title, fig in figs.items():  # no axis of fractions left
        assert fig["layout"].get("yaxis", {}).get("title", {}).get("text") != "fraction", title
