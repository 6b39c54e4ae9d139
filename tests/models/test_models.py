"""Model interface properties, parametrised over the registered models."""

import pytest
import torch

from sparse_models.config import ConfigError
from sparse_models.groups import GroupSpec
from sparse_models.models import available_models, build_model, get_entry
from sparse_models.models.base import Layout, model_config

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
    assert model.input_shape == (1, 6, 6)  # (C, H, W); a patch model's config keeps (h, w)
    assert tuple(model.config.input_shape) == (6, 6)
    for kind in model.filter_kinds():
        f = model.filters(kind)
        assert f.shape == (model.n_units, 1, 6, 6), kind
        assert not f.requires_grad and f.device.type == "cpu"
    # decoder filter i is atom i (row i of D), as a (1, h, w) image
    assert torch.equal(model.filters("decoder")[3], model.D.detach()[3].reshape(1, 6, 6))
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


# --- what a model declares about itself -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TINY))
def test_adapt_config_fits_the_input_shape_and_refuses_colour(name):
    entry = get_entry(name)
    cfg = build_model(name, TINY[name]).config
    assert entry.model_cls.adapt_config(cfg, (1, 6, 6)) is cfg  # already fits: as it is
    fitted = entry.model_cls.adapt_config(cfg, (1, 8, 10))
    assert tuple(fitted.input_shape) == (8, 10)
    assert build_model(name, fitted).input_shape == (1, 8, 10)
    with pytest.raises(ConfigError, match="3 channels"):
        entry.model_cls.adapt_config(cfg, (3, 6, 6))


def test_layouts_say_how_the_units_are_arranged():
    sc = build_model("sparse_coding", TINY["sparse_coding"])
    assert sc.layout == Layout("none")
    assert sc.layout.map_shape() == (None, "its units have no spatial layout")
    assert sc.map_shape == (4, 4)  # still drawn as a near-square grid
    assert not sc.map_periodic and not sc.has_pools and sc.pools() is None

    topo = build_model("topographic", TINY["topographic"])
    assert topo.layout == Layout("map", (4, 4), wrap=True)
    assert topo.layout.map_shape() == ((4, 4), "")
    assert topo.map_shape == (4, 4) and topo.map_periodic and topo.has_pools

    blocks = build_model("topographic", {"input_shape": [6, 6], "group": {
        "kind": "blocks", "map_shape": [2, 8], "size": 2}})
    assert blocks.layout == Layout("map", (2, 8), wrap=False)  # blocks never wrap
    assert blocks.map_shape == (2, 8) and not blocks.map_periodic


@pytest.mark.parametrize("name", sorted(TINY))
def test_models_describe_themselves_for_the_overview(name):
    cls = get_entry(name).model_cls
    for attr in ("description", "blurb", "energy_latex", "paper"):
        assert isinstance(getattr(cls, attr), str) and getattr(cls, attr).strip(), attr
    assert set(cls.preset) <= {"model", "data", "train"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_preset_and_tiny_give_valid_run_configs(name):
    from sparse_models.presets import build_run_config

    cls = get_entry(name).model_cls
    default = build_run_config(name)
    for key, value in cls.preset.get("train", {}).items():
        assert getattr(default.train, key) == value, key
    assert cls.tiny and all(k.split(".")[0] in ("model", "data", "train") for k in cls.tiny)
    tiny = build_run_config(name, cls.tiny)
    assert tiny.data.source == cls.tiny.get("data.source", "natural")
    assert tiny.train.steps == cls.tiny["train.steps"] <= 10
    assert tiny.train.batch_size <= tiny.data.n_samples
    assert tuple(tiny.model_config.input_shape) == tuple(tiny.data.input_shape[1:])


@pytest.mark.parametrize("name", sorted(TINY))
def test_evaluate_averages_the_loss_terms_over_batches(name):
    model = build_model(name, TINY[name])
    x = torch.randn(50, 36, generator=torch.Generator().manual_seed(1))
    out = model.evaluate(x, batch_size=16)  # uneven batches: 16, 16, 16, 2
    with torch.no_grad():
        whole = {k: float(v) for k, v in model.loss(x).items()}
        resid = ((x - model.decode(model.encode(x))) ** 2).sum()
        ev = 1 - float(resid / ((x - x.mean(0)) ** 2).sum())
    assert set(out) == set(whole) | {"explained_variance"}
    for k, v in whole.items():
        assert out[k] == pytest.approx(v, rel=1e-4), k
    assert out["explained_variance"] == pytest.approx(ev, rel=1e-4, abs=1e-6)
    assert all(p.grad is None for p in model.parameters())  # evaluating trains nothing


def test_model_config_types_a_dict_and_keeps_an_instance():
    cfg = model_config("sparse_coding", {"n_units": 9})
    assert type(cfg).__name__ == "SparseCodingConfig" and cfg.n_units == 9
    assert model_config("sparse_coding", cfg) is cfg
    assert model_config("sparse_coding", None) == type(cfg)()
    with pytest.raises(ConfigError, match="model.n_units must be an integer"):
        model_config("sparse_coding", {"n_units": "many"})
    with pytest.raises(ConfigError, match="unknown model"):
        model_config("nope", {})


def test_a_registered_toy_model_can_be_unregistered():
    from dataclasses import dataclass

    from sparse_models.models.base import SparseModel, register, unregister

    @dataclass(frozen=True)
    class ToyConfig:
        width: int = 3

    @register
    class Toy(SparseModel):
        name = "test_toy_model"
        Config = ToyConfig

    try:
        assert "test_toy_model" in available_models()
        assert isinstance(build_model("test_toy_model", {"width": 4}), Toy)
    finally:
        unregister("test_toy_model")
    assert "test_toy_model" not in available_models()
    with pytest.raises(ConfigError, match="unknown model 'test_toy_model'"):
        build_model("test_toy_model", {})
    unregister("test_toy_model")  # forgetting an unknown name is not an error
