"""The trainer's own Adam(W) and SGD: the same updates and state layout as torch.optim's, without
importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sparse_models.training.optim import SGD, AdamW
from sparse_models.training.runs import REPO_ROOT


def _problem(seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(12, 7, generator=g).requires_grad_(),
              torch.randn(7, generator=g).requires_grad_()]
    return params, torch.randn(32, 12, generator=g)


def _groups(params: list[torch.Tensor], **extra: float) -> list[dict]:
    # two groups with their own rates and decay, as the models' param_groups give
    return [{"params": [params[0]], "lr": 1e-2, "weight_decay": 0.3, **extra},
            {"params": [params[1]], "lr": 3e-2, "weight_decay": 0.0, **extra}]


def _train(make, steps: int):
    """`steps` steps of the optimiser `make(params)` on a fresh problem: (params after, opt)."""
    params, x = _problem()
    opt = make(params)
    return _steps(opt, x, steps), opt


@pytest.mark.parametrize("ours, theirs", [
    (lambda ps: AdamW(_groups(ps)),
     lambda ps: torch.optim.AdamW(_groups(ps), fused=True)),
    (lambda ps: SGD(_groups(ps, momentum=0.9)),
     lambda ps: torch.optim.SGD(_groups(ps, momentum=0.9))),
    (lambda ps: SGD(_groups(ps)), lambda ps: torch.optim.SGD(_groups(ps))),
], ids=["adamw", "sgd-momentum", "sgd"])
def test_updates_match_torch_optim(ours, theirs):
    a, _ = _train(ours, 40)
    b, _ = _train(theirs, 40)
    start, _ = _problem()
    for pa, pb, p0 in zip(a, b, start, strict=True):
        assert not torch.allclose(pa, p0)  # it moved
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-5)


def _steps(opt, x: torch.Tensor, n: int) -> list[torch.Tensor]:
    ps = [g["params"][0] for g in opt.param_groups]
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        ((x @ ps[0] + ps[1]).tanh() ** 2).sum().backward()
        opt.step()
    return [p.detach().clone() for p in ps]


def test_a_torch_optim_checkpoint_resumes_here_and_back():
    """A run saved with torch.optim's AdamW (the runs made before this optimiser) continues here
    as it would have there, and our state loads back into torch.optim."""
    params, x = _problem()
    torch_opt = torch.optim.AdamW(_groups(params), fused=True)
    _steps(torch_opt, x, 10)
    # ours takes over a copy of the parameters and of the state (load_state_dict copies it)
    copies = [p.detach().clone().requires_grad_() for p in params]
    ours = AdamW(_groups(copies))
    ours.load_state_dict(torch_opt.state_dict())
    theirs_after = _steps(torch_opt, x, 15)
    ours_after = _steps(ours, x, 15)
    for a, b in zip(ours_after, theirs_after, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert float(ours.state[copies[0]]["step"]) == 25
    back = torch.optim.AdamW(_groups([p.detach().clone().requires_grad_() for p in copies]),
                             fused=True)
    back.load_state_dict(ours.state_dict())
    assert float(back.state_dict()["state"][0]["step"]) == 25


def test_state_dict_round_trip_keeps_model_keys_and_continues_exactly():
    _, opt = _train(lambda ps: SGD(_groups(ps, momentum=0.9)), 5)
    opt.param_groups[0]["phase_lr"] = [0.5, 0.1]  # a model's own key (DrSAE keeps its rates so)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert set(sd["state"][0]) == {"momentum_buffer"}
    fresh = SGD(_groups(_problem()[0], momentum=0.9))
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["phase_lr"] == [0.5, 0.1]
    buf = fresh.state[fresh.param_groups[0]["params"][0]]["momentum_buffer"]
    torch.testing.assert_close(buf, sd["state"][0]["momentum_buffer"])
    assert buf.data_ptr() != sd["state"][0]["momentum_buffer"].data_ptr()  # a copy


@pytest.mark.parametrize("bad, words", [
    ({"param_groups": [{"params": [0]}], "state": {}}, "1 parameter group"),
    ({"param_groups": [{"params": [0, 1]}, {"params": []}], "state": {}}, "2 parameter"),
    ({"param_groups": [{"params": [0]}, {"params": [1]}], "state": {5: {}}}, "parameter 5"),
])
def test_a_state_that_does_not_fit_is_refused_in_words(bad, words):
    opt = AdamW(_groups(_problem()[0]))
    with pytest.raises(ValueError, match=words):
        opt.load_state_dict(bad)


def test_no_parameters_or_a_parameter_twice_is_refused():
    with pytest.raises(ValueError, match="no parameters"):
        AdamW([])
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="more than one"):
        SGD([{"params": [p]}, {"params": [p]}])


def test_training_in_a_fresh_process_does_not_import_torch_dynamo():
    """The point of these optimisers: a `train` process skips torch._dynamo's 2 s import."""
    code = ("import sys, tempfile\n"
            "from sparse_models.cli import main\n"
            "rc = main(['train', 'topographic', '--out', tempfile.mkdtemp(), '--quiet',"
            " '--set', 'data.n_patches=64', '--set', 'train.steps=3',"
            " '--set', 'train.batch_size=16', '--set', 'model.group.map_shape=[4, 4]',"
            " '--set', 'model.group.size=2'])\n"
            "print(rc, 'dynamo' if 'torch._dynamo' in sys.modules else 'no dynamo')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "0 no dynamo"
