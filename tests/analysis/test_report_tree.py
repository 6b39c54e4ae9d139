"""Tree measures in the report: known answers on fixed codes, a lateral model, and the CLI."""

import json

import numpy as np
import pytest
import torch

from sparse_models.analysis.report import TREE_KEYS, analyze_model
from sparse_models.cli import main
from sparse_models.models import build_model
from sparse_models.models.base import Layout, SparseModel

# Unit 0 is the root, units 1 and 2 its children. Codes: a path (0, 1), a clash (1 and 2),
# the root alone, nothing active.
CODES = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
X = torch.cat([CODES, torch.zeros(4, 1)], 1)  # (4, 4) inputs whose first 3 values are codes


class FixedTreeModel(SparseModel):
    """encode(x) = x[:, :3]: the inputs hold the codes; filters e0, e0, e1 (cosines 1, 0)."""

    name = "test_fixed_tree"

    def __init__(self, layout: Layout) -> None:
        super().__init__(config=None)
        self.D = torch.nn.Parameter(torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                                                  [0.0, 1.0, 0.0, 0.0]]))
        self._layout = layout

    @property
    def n_units(self):
        return 3

    @property
    def input_shape(self):
        return (1, 2, 2)

    @property
    def layout(self):
        return self._layout

    def encode(self, x):
        return x[:, :3]

    def decode(self, z):
        return z @ self.D

    def filter_kinds(self):
        return ("decoder",)

    def filters(self, kind="decoder"):
        return self.D.detach().reshape(3, 1, 2, 2).clone()


def test_tree_measures_have_the_known_answers():
    out = analyze_model(FixedTreeModel(Layout("tree", parents=(-1, 0, 0))), X)
    json.dumps(out, allow_nan=False)
    assert out["why_no_tree"] is None
    assert (out["tree_units"], out["tree_count"], out["tree_depth"]) == (3, 1, 2)
    assert out["path_share"] == pytest.approx(2 / 3)  # of the 3 inputs with an active unit
    assert out["tree_active_share"] == pytest.approx(3 / 4)
    assert out["clash_share"] == pytest.approx(1 / 4)  # units 1 and 2 together, once
    assert out["mean_active_units"] == pytest.approx(5 / 4)
    assert out["parent_child_similarity"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert out["all_pairs_similarity"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert out["parent_child_similarity_ratio"] == pytest.approx(1.5)
    # branch usage: 0's subtree 3/4, 1's 2/4, 2's 1/4
    assert out["min_branch_usage"] == pytest.approx(0.25) and out["min_branch_unit"] == 2
    assert out["branches_under_1pct"] == 0


def test_a_branch_never_used_counts_as_rare():
    codes = X.clone()
    codes[:, 2] = 0.0  # unit 2 never fires: its branch is used on 0 % of the inputs
    out = analyze_model(FixedTreeModel(Layout("tree", parents=(-1, 0, 0))), codes)
    assert out["branches_under_1pct"] == 1 and out["min_branch_unit"] == 2
    assert out["min_branch_usage"] == 0.0
    assert out["path_share"] == pytest.approx(1.0) and out["clash_share"] == 0.0


@pytest.mark.parametrize("layout,words", [
    (Layout("map", (1, 3)), "2-D map"),
    (Layout("none"), "no tree"),
])
def test_no_tree_is_none_with_the_reason(layout, words):
    out = analyze_model(FixedTreeModel(layout), X)
    assert all(out[k] is None for k in TREE_KEYS)
    assert words in out["why_no_tree"]


def test_a_lateral_tree_model_is_measured_with_its_own_inhibition():
    model = build_model("lateral", {"input_shape": [6, 6], "depth": 2, "branching": 3,
                                    "n_trees": 2, "lam": 0.1, "s_scale": 0.5, "n_iter": 30})
    x = torch.randn(64, 36, generator=torch.Generator().manual_seed(0))
    out = analyze_model(model, x)
    z = model.encode(x)
    ref = model.tree_measures(z)
    assert out["tree_units"] == 8 and out["tree_count"] == 2
    assert out["path_share"] == pytest.approx(ref["path_share"])
    assert out["clash_share"] == pytest.approx(ref["clash_share"])
    assert out["min_branch_usage"] == pytest.approx(float(np.min(ref["branch_usage"])))
    # S > 0 exactly off the ancestor/descendant pairs: a clash is an input off a single path
    assert out["clash_share"] == pytest.approx(out["tree_active_share"] * (1 - out["path_share"]))


def test_analyze_prints_the_tree_measures(tmp_path, capsys):
    from app_ui.testing import cli_train
    from sparse_models.models.lateral import Lateral

    run = cli_train(tmp_path, "lateral", "tree", [f"{k}={v}" for k, v in Lateral.tiny.items()])
    capsys.readouterr()
    assert main(["analyze", str(run), "--samples", "100"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    for key in ("path_share", "parent_child_similarity_ratio", "clash_share",
                "min_branch_usage", "branches_under_1pct"):
        assert key in lines
    assert lines["why_no_tree"].strip() == "None"
    assert 0.0 <= float(lines["path_share"]) <= 1.0
