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


def _assert_trains_identically(a, b) -> None:
    """Three Adam steps on the same batch leave both models with equal parameters."""
    x = torch.randn(32, 36)
    oa, ob = (torch.optim.Adam(m.param_groups(1e-2)) for m in (a, b))
    for _ in range(3):
        a.train_step(x, None, oa)
        b.train_step(x, None, ob)
    for (k, va), vb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(va, vb), k


def test_revival_off_by_default_leaves_the_step_as_it_was():
    torch.manual_seed(0)
    a = build_model("topographic", BASE)
    b = build_model("topographic", {**BASE, "revive_every": 0, "revive_until": 5})
    assert a.config.revive_every == 0
    _assert_trains_identically(a, b)
    assert a._fired is None  # nothing tracked when revival is off


# --- retinotopic apertures (model.aperture) -----------------------------------------------------

from sparse_models.models.topographic import aperture_centres, aperture_masks  # noqa: E402

AP = {"input_shape": [8, 8], "group": {"kind": "neighbourhood", "map_shape": [4, 4], "size": 3,
                                       "wrap": False}, "aperture": 2.5}


def test_aperture_centres_move_with_the_units_place_on_the_map():
    m = build_model("topographic", AP)
    cy, cx = aperture_centres(m.config)
    # unit (r, c) of a 4×4 map over an 8×8 patch: centre ((r + ½)·2 − ½, (c + ½)·2 − ½)
    assert torch.allclose(cy.view(4, 4), (torch.arange(4.0)[:, None] * 2 + 0.5).expand(4, 4).double())
    assert torch.allclose(cx.view(4, 4), (torch.arange(4.0)[None] * 2 + 0.5).expand(4, 4).double())
    mask = torch.from_numpy(aperture_masks(m.config)).view(16, 8, 8)
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    for k in range(16):  # each mask is the disc of radius 2.5 round its own centre
        inside = (ys - cy[k]) ** 2 + (xs - cx[k]) ** 2 <= 2.5**2
        assert torch.equal(mask[k].bool(), inside)
    # the mask's centre of mass moves right along a row and down along a column
    com_x = (mask * xs).sum((1, 2)) / mask.sum((1, 2))
    com_y = (mask * ys).sum((1, 2)) / mask.sum((1, 2))
    assert torch.all(com_x.view(4, 4).diff(dim=1) > 0) and torch.all(com_y.view(4, 4).diff(dim=0) > 0)


def test_aperture_keeps_both_filters_inside_after_training_steps_and_revival():
    torch.manual_seed(0)
    for zero_mean in (False, True):
        m = build_model("topographic", {**AP, "zero_mean": zero_mean, "revive_every": 2})
        outside = m.mask == 0
        assert torch.all(m.D.detach()[outside] == 0) and torch.all(m.M.detach()[outside] == 0)
        x = torch.randn(64, 64)
        opt = torch.optim.Adam(m.param_groups(1e-2))
        with torch.no_grad():  # a silent unit, revived at step 2
            m.M[3] = 0
            m.b[3] = 100.0
        for _ in range(4):
            m.train_step(x, None, opt)
        D, M = m.D.detach(), m.M.detach()
        assert torch.all(D[outside] == 0) and torch.all(M[outside] == 0)
        assert M[3].norm() > 0  # revived, inside its own aperture
        assert torch.allclose(D.norm(dim=1), torch.ones(16), atol=1e-5)  # unit-norm atoms
        assert bool((D[~outside] != 0).any())
        if zero_mean:
            assert torch.allclose(D.sum(1), torch.zeros(16), atol=1e-5)
            assert torch.allclose(M.sum(1), torch.zeros(16), atol=1e-5)
        f = m.filters("decoder").reshape(16, 8, 8)
        assert torch.all(f.reshape(16, -1)[outside] == 0)


def test_aperture_off_by_default_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    a = build_model("topographic", BASE)
    b = build_model("topographic", {**BASE, "aperture": 0.0, "zero_mean": True})
    assert a.config.aperture == 0 and a.mask is None and "mask" not in dict(a.named_buffers())
    _assert_trains_identically(a, b)
