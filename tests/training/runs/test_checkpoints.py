"""Tensor files of a run: the one weight-fit check, and filter snapshots old and new."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sparse_models.models import build_model
from sparse_models.training.runs import (
    FORMAT,
    SNAPSHOTS_FILE,
    WEIGHTS_FILE,
    RunError,
    RunWriter,
    check_weights_fit,
    read_snapshots,
)

SOURCE = Path("/somewhere/run-7") / WEIGHTS_FILE


@pytest.fixture
def topo():
    return build_model("topographic", {"input_shape": [6, 6],
                                       "group": {"map_shape": [4, 4], "size": 3}})


def test_the_models_own_state_fits(topo):
    check_weights_fit(topo, topo.state_dict(), SOURCE)  # no error
    params = {k: p.detach() for k, p in topo.named_parameters()}
    check_weights_fit(topo, params, SOURCE, only=list(params))  # its parameters alone, too


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("D"), r"does not fit the 'topographic' model of this config: missing D$"),
    (lambda s: s.update(E=torch.zeros(3)), r"does not fit .*: unexpected E$"),
    (lambda s: (s.pop("gain"), s.update(extra=torch.zeros(1))),
     r"missing gain; unexpected extra$"),
    (lambda s: s.update(D=torch.zeros(9, 36)),
     r"D has shape \(9, 36\) but this config needs \(16, 36\)"),
    (lambda s: s.update(P=torch.zeros(16, 17)), r"P has shape \(16, 17\)"),  # a buffer, too
    (lambda s: s["M"].__setitem__((0, 0), float("nan")), r"M holds NaN or infinite values"),
    (lambda s: s["b"].__setitem__(3, float("inf")), r"b holds NaN or infinite values"),
])
def test_weights_that_do_not_fit_are_refused_naming_the_file(topo, change, message):
    state = {k: v.clone() for k, v in topo.state_dict().items()}
    change(state)
    with pytest.raises(RunError, match=message) as info:
        check_weights_fit(topo, state, SOURCE)
    assert str(info.value).startswith(str(SOURCE))


def test_only_checks_the_named_tensors_but_still_refuses_strangers(topo):
    params = [k for k, _ in topo.named_parameters()]
    state = {k: v.clone() for k, v in topo.state_dict().items()}
    state["P"] = torch.zeros(5, 16)  # a buffer of another shape: not asked for, not checked
    check_weights_fit(topo, state, SOURCE, only=params)
    with pytest.raises(RunError, match="missing D"):
        check_weights_fit(topo, {k: v for k, v in state.items() if k != "D"}, SOURCE, only=params)
    with pytest.raises(RunError, match="unexpected stranger"):
        check_weights_fit(topo, {**state, "stranger": torch.zeros(1)}, SOURCE, only=params)
    state["D"] = torch.full((16, 36), float("nan"))
    with pytest.raises(RunError, match="D holds NaN"):
        check_weights_fit(topo, state, SOURCE, only=params)


def test_snapshots_round_trip_as_n_c_h_w(tmp_path):
    filters = [np.random.default_rng(i).standard_normal((16, 1, 6, 6)).astype(np.float32)
               for i in range(3)]
    RunWriter(tmp_path).save_snapshots([0, 5, 10], filters, "encoder")
    steps, snaps, kind = read_snapshots(tmp_path)
    assert steps.tolist() == [0, 5, 10] and steps.dtype == np.int64
    assert snaps.shape == (3, 16, 1, 6, 6) and snaps.dtype == np.float32 and kind == "encoder"
    np.testing.assert_allclose(snaps, np.stack(filters), rtol=1e-3, atol=1e-3)  # half precision


def test_snapshots_of_format_1_still_read(tmp_path):
    # Format 1 stored single-channel decoder filters (S, N, h, w), with no filter_kind.
    filters = torch.randn(4, 9, 5, 5, generator=torch.Generator().manual_seed(0)).half()
    save_file({"steps": torch.tensor([0, 10, 20, 30]), "filters": filters},
              str(tmp_path / SNAPSHOTS_FILE), metadata={"format": FORMAT, "kind": "snapshots"})
    steps, snaps, kind = read_snapshots(tmp_path)
    assert steps.tolist() == [0, 10, 20, 30] and kind == "decoder"
    assert snaps.shape == (4, 9, 1, 5, 5)
    np.testing.assert_array_equal(snaps[:, :, 0], filters.float().numpy())


@pytest.mark.parametrize("tensors, message", [
    ({"steps": torch.tensor([0, 1])}, "holds no 'steps' and 'filters'"),
    ({"steps": torch.tensor([0, 1]), "filters": torch.zeros(3, 4, 1, 2, 2)},
     r"2 steps but filters of shape \(3, 4, 1, 2, 2\)"),
    ({"steps": torch.tensor([0]), "filters": torch.zeros(1, 4, 2)}, "1 steps but filters"),
])
def test_broken_snapshots_are_a_run_error_naming_the_file(tmp_path, tensors, message):
    save_file(tensors, str(tmp_path / SNAPSHOTS_FILE))
    with pytest.raises(RunError, match=message) as info:
        read_snapshots(tmp_path)
    assert SNAPSHOTS_FILE in str(info.value)
