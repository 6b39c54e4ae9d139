"""Reviving silent units of the topographic model (model.revive_every)."""

import torch

from sparse_models.models import build_model

BASE = {"input_shape": [6, 6], "group": {"kind": "neighbourhood", "map_shape": [4, 4], "size": 3}}


def _params(m):
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def test_revive_restarts_only_the_dead_units_and_clears_their_optimiser_state():
    torch.manual_seed(0)
    m = build_model("topographic", {**BASE, "revive_every": 1})
    x = torch.randn(32, 36)
    opt = torch.optim.Adam(m.param_groups(1e-2))
    for _ in range(3):  # optimiser state everywhere
        m.train_step(x, None, opt)
    before = _params(m)
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[2, 7, 11]] = True
    idx = m.revive(x, dead, opt)
    assert idx.tolist() == [2, 7, 11]
    after = _params(m)
    live = ~dead
    for k in ("M", "D", "b", "gain"):
        assert torch.equal(after[k][live], before[k][live]), k  # live units untouched
        assert not torch.equal(after[k][dead], before[k][dead]) or k == "gain", k
    # a revived atom is a residual of one of the patches, at unit norm
    assert torch.allclose(after["D"][dead].norm(dim=1), torch.ones(3), atol=1e-5)
    live_norm = before["M"][live].norm(dim=1).median()
    assert torch.allclose(after["M"][dead].norm(dim=1), live_norm.expand(3), atol=1e-5)
    assert torch.equal(after["b"][dead], before["b"][live].abs().median().expand(3))
    for p in (m.M, m.D, m.b, m.gain):
        for v in opt.state[p].values():
            if torch.is_tensor(v) and v.shape == p.shape:
                assert torch.all(v[dead] == 0) and torch.any(v[live] != 0)


def test_revived_atoms_are_residuals_of_the_batch():
    torch.manual_seed(1)
    m = build_model("topographic", BASE)
    x = torch.randn(8, 36)
    with torch.no_grad():
        r = x - m.predict(x) @ m.D
    dead = torch.zeros(16, dtype=torch.bool)
    dead[5] = True
    m.revive(x, dead)
    atom = m.D.detach()[5]
    unit = r / r.norm(dim=1, keepdim=True)
    assert torch.isclose((unit @ atom).max(), torch.tensor(1.0), atol=1e-5)


def test_training_revives_units_that_never_fire_and_only_until_revive_until():
    torch.manual_seed(0)
    cfg = {**BASE, "revive_every": 2, "revive_until": 2}
    m = build_model("topographic", cfg)
    x = torch.randn(64, 36)
    with torch.no_grad():  # silence units 0 and 1: zero encoder, huge threshold
        m.M[:2] = 0
        m.b[:2] = 100.0
    opt = torch.optim.Adam(m.param_groups(1e-3))
    m.train_step(x, None, opt)
    assert torch.equal(m.M.detach()[:2], torch.zeros(2, 36))  # not yet: step 1 of 2
    m.train_step(x, None, opt)
    assert m.M.detach()[:2].norm(dim=1).min() > 0 and m.b.detach()[:2].abs().max() < 100
    assert bool((m.predict(x)[:, :2] != 0).any())
    with torch.no_grad():  # silence them again: past revive_until they stay silent
        m.M[:2] = 0
        m.b[:2] = 100.0
    for _ in range(4):
        m.train_step(x, None, opt)
    assert torch.equal(m.M.detach()[:2], torch.zeros(2, 36))


def test_revival_off_by_default_leaves_the_step_as_it_was():
    torch.manual_seed(0)
    a = build_model("topographic", BASE)
    b = build_model("topographic", {**BASE, "revive_every": 0, "revive_until": 5})
    assert a.config.revive_every == 0
    x = torch.randn(32, 36)
    oa, ob = (torch.optim.Adam(m.param_groups(1e-2)) for m in (a, b))
    for _ in range(3):
        a.train_step(x, None, oa)
        b.train_step(x, None, ob)
    for (k, va), vb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(va, vb), k
    assert a._fired is None  # nothing tracked when revival is off
