"""Model interface properties, parametrised over the registered models."""

import pytest
import torch

from sparse_models.config import ConfigError
from sparse_models.groups import GroupSpec
from sparse_models.models import available_models, build_model

TINY = {
    "sparse_coding": {"input_shape": [6, 6], "n_units": 16, "n_iter": 20},
    "topographic": {"input_shape": [6, 6],
                    "group": {"kind": "neighbourhood", "map_shape": [4, 4], "size": 3}},
}


@pytest.fixture(params=sorted(TINY))
def model(request):
    return build_model(request.param, TINY[request.param])


def test_every_registered_model_has_a_tiny_config():
    assert set(available_models()) >= set(TINY)


def test_shapes_and_loss_terms(model):
    x = torch.randn(8, 36)
    z = model.encode(x)
    assert z.shape == (8, model.n_units)
    assert model.decode(z).shape == (8, 36)
    terms = model.loss(x)
    assert "loss" in terms and all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    f = model.filters("decoder")
    assert f.shape == (model.n_units, 6, 6)
    assert model.map_shape[0] * model.map_shape[1] == model.n_units


def test_train_step_lowers_loss_and_keeps_unit_norm_atoms(model):
    torch.manual_seed(0)
    x = torch.randn(64, 36)
    opt = torch.optim.Adam(model.param_groups(1e-2))
    first = float(model.loss(x)["loss"].detach())
    for _ in range(40):
        model.train_step(x, None, opt)
    assert float(model.loss(x)["loss"].detach()) < first
    norms = model.D.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_bad_configs_are_rejected_with_the_key_named():
    with pytest.raises(ConfigError, match="lam"):
        build_model("topographic", {"lam": -1})
    with pytest.raises(ConfigError, match="unknown key model.lamda"):
        build_model("topographic", {"lamda": 1})
    with pytest.raises(ConfigError, match="larger than the 4×4 map"):
        build_model("topographic", {"group": {"map_shape": [4, 4], "size": 5}})
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("nope", {})
    with pytest.raises(ConfigError, match="solver"):
        build_model("sparse_coding", {"solver": "lars"})


@pytest.mark.parametrize("l1", [0.0, 0.2])
def test_topographic_optimal_inference_lowers_the_energy_monotonically(l1):
    base = {**TINY["topographic"], "inference": "optimal", "lam": 0.3, "l1": l1}
    x = torch.randn(16, 36)
    ref = build_model("topographic", base)
    energies = []
    for steps in (1, 2, 5, 20, 60):
        m = build_model("topographic", {**base, "infer_steps": steps})
        m.load_state_dict(ref.state_dict())
        with torch.no_grad():
            f = m.predict(x)
            if not energies:
                energies.append(float(m.energy(x, f)))
            energies.append(float(m.energy(x, m.infer(x, f))))
    assert all(b <= a + 1e-4 for a, b in zip(energies, energies[1:], strict=False)), energies
    assert energies[-1] < 0.9 * energies[0]


def test_topographic_pools_come_from_its_group_spec():
    spec = GroupSpec(kind="blocks", map_shape=(4, 4), size=2)
    m = build_model("topographic", {"input_shape": [6, 6], "group": spec})
    assert m.pools().shape == (4, 16)
    assert not m.map_periodic


@pytest.mark.parametrize("l1", [0.0, 0.3])
def test_topographic_hand_gradients_match_autograd(l1):
    m = build_model("topographic", {"l1": l1}).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # thresholds of both signs and one at 0, uneven gains
        m.b.copy_(torch.rand(m.n_units, generator=g, dtype=torch.float64) * 0.6 - 0.1)
        m.b[0] = 0.0
        m.gain.copy_(torch.rand(m.n_units, generator=g, dtype=torch.float64) + 0.5)
    x = torch.randn(48, 144, generator=g, dtype=torch.float64)
    terms, grads = m.amortized_gradients(x)
    m.zero_grad()
    ref = m.loss(x)
    ref["loss"].backward()
    assert set(terms) == set(ref)
    for k in ref:
        assert torch.allclose(terms[k], ref[k].detach(), rtol=1e-12), k
    for grad, p in zip(grads, (m.M, m.D, m.b, m.gain), strict=True):
        assert torch.allclose(grad, p.grad, rtol=1e-10, atol=1e-12)


def test_topographic_fused_train_step_is_the_backprop_step():
    from sparse_models.models.base import SparseModel
    from sparse_models.training.trainer import TrainConfig, make_optimizer

    x = torch.randn(64, 144, generator=torch.Generator().manual_seed(4))
    fused, plain = build_model("topographic", {}), build_model("topographic", {})
    plain.gradients = lambda x, y: SparseModel.gradients(plain, x, y)  # autograd through loss()
    opts = [make_optimizer(m, TrainConfig(lr=3e-3)) for m in (fused, plain)]
    for _ in range(5):
        a = fused.train_step(x, None, opts[0])
        b = plain.train_step(x, None, opts[1])
        assert torch.allclose(a["loss"], b["loss"], rtol=1e-5)
    for p, q in zip(fused.parameters(), plain.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)


def test_default_filter_kind_is_the_decoder_else_the_first_kind():
    m = build_model("topographic", {})
    assert m.default_filter_kind() == "decoder"
    m.filter_kinds = lambda: ("encoder", "lateral")  # a model without decoder filters
    assert m.default_filter_kind() == "encoder"
