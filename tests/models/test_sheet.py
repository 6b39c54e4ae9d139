"""The sheet model: its locally connected layer against known answers, its pools against a dense
matrix, its declarations, and bad configs refused in words."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sparse_models.config import ConfigError
from sparse_models.models import build_model
from sparse_models.models.sheet import MAX_UNITS, Sheet, SheetConfig

SMALL = {"input_shape": [12, 10], "receptive_field": 4, "stride": 2, "per_position": 3,
         "pool_size": 2}


def small(**kw) -> Sheet:
    return build_model("sheet", {**SMALL, **kw})


def test_positions_units_and_layout():
    m = small()
    assert m.config.sheet == (5, 4)  # (12 − 4)/2 + 1, (10 − 4)/2 + 1
    assert m.n_units == 5 * 4 * 3 and m.input_shape == (1, 12, 10)
    assert m.layout.kind == "sheet" and m.layout.shape == (5, 4) and m.layout.per_position == 3
    assert m.layout.n_units == m.n_units
    f = m.filters("encoder")
    assert f.shape == (m.n_units, 1, 4, 4)
    # unit i = position i // K, filter k = i % K
    assert torch.equal(m.filters("decoder")[7, 0], m.D.detach()[7 // 3, 7 % 3].reshape(4, 4))


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_tied_locally_connected_layer_is_a_convolution(stride):
    """Known answer: with every position's filters the same, the layer is F.conv2d."""
    m = small(stride=stride, pool_size=1)
    K, r = m.config.per_position, m.config.receptive_field
    rows, cols = m.config.sheet
    w = torch.randn(K, 1, r, r, generator=torch.Generator().manual_seed(1))
    tied = w.reshape(1, K, r * r).expand(rows * cols, K, r * r)
    x = torch.randn(5, 12 * 10)
    got = m.local(x, tied).reshape(5, rows, cols, K).permute(0, 3, 1, 2)
    want = F.conv2d(x.reshape(5, 1, 12, 10), w, stride=stride)
    assert want.shape == got.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_decoder_is_the_adjoint_of_the_encoders_linear_part():
    """⟨Ex, z⟩ = ⟨x, Eᵀz⟩ with untied random weights per position, and the decoder with D = M
    is exactly Eᵀ."""
    m = small()
    x = torch.randn(4, 120, dtype=torch.float64)
    z = torch.randn(4, m.n_units, dtype=torch.float64)
    W = torch.randn(*m.M.shape, dtype=torch.float64)
    lhs = (m.local(x, W) * z).sum()
    rhs = (x * m.local_transpose(z, W)).sum()
    torch.testing.assert_close(lhs, rhs)
    with torch.no_grad():
        m.D.copy_(m.M)
    torch.testing.assert_close(m.decode(z.float()), m.local_transpose(z.float(), m.M.detach()))


@pytest.mark.parametrize("wrap,stride,sigma", [(False, 1, 1.0), (False, 2, None),
                                                (True, 1, 0.7), (True, 2, 1.5)])
def test_pool_penalty_equals_the_dense_pool_matrix(wrap, stride, sigma):
    m = small(pool_size=3, pool_stride=stride, pool_wrap=wrap, pool_sigma=sigma,
              input_shape=[14, 12])
    z = torch.randn(6, m.n_units, dtype=torch.float64)
    P = m.pools().double()  # (J, N), from GroupSpec on the positions, repeated over K units
    assert P.shape[1] == m.n_units
    dense = torch.sqrt((z * z) @ P.T + m.config.eps).sum(-1)
    m.pool_weights = m.pool_weights.double()
    torch.testing.assert_close(m.group_penalty(z), dense)
    assert m.has_pools


def test_large_sheets_have_pools_but_no_dense_matrix():
    m = build_model("sheet", {"input_shape": [128, 128], "receptive_field": 8, "stride": 1,
                              "per_position": 4})
    assert m.pools() is None and m.has_pools  # 121² pools × 58 564 units: not materialised
    z = torch.randn(2, m.n_units)
    assert torch.isfinite(m.group_penalty(z)).all()


def test_loss_is_finite_and_training_lowers_it_keeping_unit_decoder_filters():
    torch.manual_seed(0)
    m = small()
    x = torch.randn(32, 120)
    terms = m.loss(x)
    assert {"loss", "reconstruction", "group_sparsity", "l1"} <= set(terms)
    opt = torch.optim.Adam(m.param_groups(1e-2))
    first = float(terms["loss"].detach())
    for _ in range(30):
        m.train_step(x, None, opt)
    assert float(m.loss(x)["loss"].detach()) < first
    norms = m.D.detach().norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


@pytest.mark.parametrize("settings,words", [
    ({"receptive_field": 16}, "larger than the 12×10 image"),
    ({"stride": 8}, "leaves 2×1 position"),
    ({"input_shape": [6, 6], "receptive_field": 2}, "too small"),
    ({"input_shape": [256, 256], "receptive_field": 2, "stride": 1, "per_position": 4},
     f"limit of {MAX_UNITS}"),
    ({"pool_size": 5}, "do not fit"),
    ({"pool_size": 2, "pool_stride": 3}, "some positions would be in no pool"),
])
def test_bad_configs_are_refused_in_words(settings, words):
    with pytest.raises(ConfigError, match=words):
        small(**settings)


def test_adapt_config_fits_the_data_or_says_why():
    c = SheetConfig()
    assert Sheet.adapt_config(c, (1, 48, 40)).input_shape == (48, 40)
    with pytest.raises(ConfigError, match="grey"):
        Sheet.adapt_config(c, (3, 32, 32))
    with pytest.raises(ConfigError, match="larger than the 10×10 image"):
        Sheet.adapt_config(SheetConfig(receptive_field=12), (1, 10, 10))
    with pytest.raises(ConfigError, match="too small"):
        Sheet.adapt_config(c, (1, 6, 32))
