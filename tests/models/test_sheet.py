"""The sheet model: its locally connected layer against known answers, its pools against a dense
matrix, its declarations, and bad configs refused in words."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sparse_models.config import ConfigError
from sparse_models.models import build_model
from sparse_models.models.sheet import MAX_UNITS, Sheet, SheetConfig, field_pixels

# The block layout without smooth retinotopy (the default shifts fields inside a block; its own
# tests below turn it on)
SMALL = {"input_shape": [12, 10], "receptive_field": 4, "stride": 2, "per_position": 3,
         "pool_size": 2, "smooth_retinotopy": False}


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
    # K = 3 units per position are drawn as a 1×3 block: a 5×12 map; map cell (1, 7) is unit
    # 1·12 + 7 = 19, at position (1, 7 // 3 = 2) = position 1·4 + 2 = 6, its filter 7 % 3 = 1
    assert m.config.unit_map == (5, 12) and m.layout.map_shape() == ((5, 12), "")
    assert torch.equal(m.filters("decoder")[19, 0], m.D.detach()[6, 1].reshape(4, 4))
    assert tuple(m.layout.unit_positions()[19]) == (1, 2)


def test_square_blocks_tile_the_map_and_codes_follow_the_map_order():
    """K = 4: each position's units are a 2×2 block; code i is the unit in map cell i."""
    m = small(per_position=4)
    rows, cols = m.config.sheet
    assert m.config.unit_map == (2 * rows, 2 * cols)
    x = torch.randn(3, 120)
    z = m.local(x, m.M.detach())
    f = m.filters("encoder")[:, 0].reshape(m.n_units, -1)
    patches = F.unfold(x.reshape(3, 1, 12, 10), 4, stride=2)  # (3, 16, L)
    pos = torch.as_tensor(m.layout.unit_positions())  # (N, 2)
    p = pos[:, 0] * cols + pos[:, 1]
    want = (patches[:, :, p] * f.T).sum(1)  # each unit's own filter on its own position's patch
    torch.testing.assert_close(z, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_tied_locally_connected_layer_is_a_convolution(stride):
    """Known answer: with every position's filters the same, the layer is F.conv2d."""
    m = small(stride=stride, pool_size=1)
    K, r = m.config.per_position, m.config.receptive_field
    rows, cols = m.config.sheet
    w = torch.randn(K, 1, r, r, generator=torch.Generator().manual_seed(1))
    tied = w.reshape(1, K, r * r).expand(rows * cols, K, r * r)
    x = torch.randn(5, 12 * 10)
    got = m.from_map(m.local(x, tied)).reshape(5, rows, cols, K).permute(0, 3, 1, 2)
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


@pytest.mark.parametrize("shape,r,s", [((12, 10), 4, 2), ((13, 11), 5, 3), ((9, 12), 3, 1),
                                       ((14, 12), 3, 5)])
def test_field_pixels_cut_unfolds_patches_and_adding_at_them_is_fold(shape, r, s):
    """The training step's im2col / col2im (a gather and an `index_add_` at `field_pixels`)
    against F.unfold and F.fold, including strides wider than the field and images the sheet
    does not reach the end of."""
    B, (H, W) = 3, shape
    cfg = SheetConfig(input_shape=shape, receptive_field=r, stride=s, per_position=1,
                      pool_size=1)
    pix = field_pixels(cfg)  # (L, r²)
    x = torch.randn(B, 1, H, W, dtype=torch.float64)
    want = F.unfold(x, r, stride=s)  # (B, r², L)
    torch.testing.assert_close(x.reshape(B, -1)[:, pix], want.permute(0, 2, 1))
    y = torch.randn_like(want)
    img = torch.randn(B, H * W, dtype=torch.float64)
    folded = F.fold(y, shape, r, stride=s).reshape(B, -1)
    got = img.clone().index_add_(1, pix.flatten(), y.permute(0, 2, 1).reshape(B, -1), alpha=-0.5)
    torch.testing.assert_close(got, img - 0.5 * folded)


def field_support(c: SheetConfig) -> torch.Tensor:
    """(K, w²): 1 on each of a position's units' square r×r field inside its window."""
    r, w = c.receptive_field, c.window
    rows_off, cols_off = c.offsets
    out = torch.zeros(len(rows_off), len(cols_off), w, w)
    for i, dy in enumerate(rows_off):
        for j, dx in enumerate(cols_off):
            out[i, j, dy:dy + r, dx:dx + r] = 1
    return out.reshape(-1, w * w)


def reference_loss(m: Sheet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The sheet's loss written out the slow way, unit by unit: each unit's own r×r field sliced
    from the image where its position and its shift in the block put it, its weights cut from
    its window at that shift, its code put into its cell of the unit map, the reconstruction
    summed field by field, the penalty through the dense pool matrix."""
    c = m.config
    (H, W), r, s, (rows, cols), (a, b) = c.input_shape, c.receptive_field, c.stride, c.sheet, c.block
    w = c.window
    rows_off, cols_off = c.offsets
    B = x.shape[0]
    img = x.reshape(B, H, W)
    t = m.b.abs().reshape(rows, a, cols, b)
    g = m.gain.reshape(rows, a, cols, b)
    zmap = [[None] * (cols * b) for _ in range(rows * a)]
    recon = torch.zeros(B, H, W, dtype=x.dtype)
    for i in range(rows):
        for j in range(cols):
            pos = i * cols + j
            for k in range(c.per_position):
                al, be = divmod(k, b)
                top, left = i * s + rows_off[al], j * s + cols_off[be]
                enc = m.M[pos, k].reshape(w, w)[rows_off[al]:rows_off[al] + r,
                                                 cols_off[be]:cols_off[be] + r]
                dec = m.D[pos, k].reshape(w, w)[rows_off[al]:rows_off[al] + r,
                                                 cols_off[be]:cols_off[be] + r]
                u = img[:, top:top + r, left:left + r].reshape(B, r * r) @ enc.reshape(-1)
                thr = t[i, al, j, be]
                v = torch.relu(u - thr) if c.encoder == "relu" else \
                    torch.sign(u) * torch.relu(u.abs() - thr)
                zk = g[i, al, j, be] * v
                zmap[i * a + al][j * b + be] = zk
                patch = zk[:, None, None] * dec
                recon = recon + F.pad(patch, (left, W - left - r, top, H - top - r))
    z = torch.stack([torch.stack(row, 1) for row in zmap], 1).reshape(B, -1)  # map order
    res = (img - recon).reshape(B, -1)
    pools = m.pools().to(x.dtype)
    terms = {"reconstruction": 0.5 * (res * res).sum(-1).mean(),
             "group_sparsity": c.lam * torch.sqrt((z * z) @ pools.T + c.eps).sum(-1).mean()}
    if c.l1 > 0:
        terms["l1"] = c.l1 * z.abs().sum(-1).mean()
    terms["loss"] = sum(terms.values())
    return terms


@pytest.mark.parametrize("settings", [
    {}, {"stride": 1}, {"stride": 3, "input_shape": [13, 11], "receptive_field": 5},
    {"stride": 5, "receptive_field": 3}, {"per_position": 1, "pool_size": 1},
    {"per_position": 4, "pool_size": 3, "pool_stride": 2, "pool_wrap": True, "pool_sigma": None},
    {"encoder": "relu"}, {"l1": 0.0}, {"round_fields": False, "zero_mean": False},
    {"pool_size": 5, "pool_wrap": True},
    {"smooth_retinotopy": True, "per_position": 4, "pool_size": 3},
    {"smooth_retinotopy": True, "per_position": 9, "stride": 3, "input_shape": [14, 13],
     "receptive_field": 3, "pool_size": 3, "encoder": "relu"},
])
def test_hand_written_gradients_equal_the_slow_reference(settings):
    """Known answer: the training step's batch-last, hand-written gradients (`gradients`) and
    the autograd path (`loss`) both equal backprop through the position-by-position reference."""
    m = small(**settings).double()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # untie M from D, spread the thresholds and gains
        m.M.add_(0.3 * torch.randn(m.M.shape, generator=gen, dtype=torch.float64))
        m.b.add_(0.1 * torch.randn(m.b.shape, generator=gen, dtype=torch.float64))
        m.gain.add_(0.2 * torch.randn(m.gain.shape, generator=gen, dtype=torch.float64))
        support = field_support(m.config).double()  # where a unit's weights may be non-zero
        m.M.mul_(support)
        m.D.mul_(support)
    h, w = m.config.input_shape
    x = torch.randn(7, h * w, generator=gen, dtype=torch.float64)
    params = (m.M, m.D, m.b, m.gain)
    ref = reference_loss(m, x)
    want = torch.autograd.grad(ref["loss"], params)
    before = [v.detach().clone() for v in (x, *params)]
    m.zero_grad()
    got = m.gradients(x, None)
    for v, b in zip((x, *params), before, strict=True):
        assert torch.equal(v, b)  # works in place on its own arrays only
    assert set(got) == set(ref)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k].detach())
    for p, gw in zip(params, want, strict=True):  # (gradients off a unit's field: `constrain`)
        torch.testing.assert_close(p.grad * support if p.dim() == 3 else p.grad, gw)
    auto = m.loss(x)
    for k in ref:
        torch.testing.assert_close(auto[k], ref[k])
    for gl, gw in zip(torch.autograd.grad(auto["loss"], params), want, strict=True):
        torch.testing.assert_close(gl * support if gl.dim() == 3 else gl, gw)


def test_hand_written_gradients_leave_a_single_image_alone():
    m = small()
    x = torch.randn(1, 120)
    keep = x.clone()
    terms = m.gradients(x, None)
    assert torch.equal(x, keep)
    torch.testing.assert_close(terms["loss"], m.loss(x)["loss"].detach())


@pytest.mark.parametrize("wrap,stride,sigma", [(False, 1, 1.0), (False, 2, None),
                                                (True, 1, 0.7), (True, 2, 1.5)])
def test_pool_penalty_equals_the_dense_pool_matrix(wrap, stride, sigma):
    m = small(pool_size=3, pool_stride=stride, pool_wrap=wrap, pool_sigma=sigma,
              input_shape=[14, 12])
    z = torch.randn(6, m.n_units, dtype=torch.float64)
    P = m.pools().double()  # (J, N), from GroupSpec on the unit map
    assert P.shape[1] == m.n_units
    dense = torch.sqrt((z * z) @ P.T + m.config.eps).sum(-1)
    m.double()
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
    ({"pool_size": 13}, "do not fit the 5×12 map"),
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


def test_filters_stay_round_zero_mean_and_unit_length_through_training():
    torch.manual_seed(0)
    m = small(receptive_field=6, per_position=4)
    opt = torch.optim.Adam(m.param_groups(1e-2))
    for _ in range(5):
        m.train_step(torch.randn(16, 120), None, opt)
    ap = m.aperture.reshape(6, 6)
    assert ap[0, 0] == 0 and ap[2, 3] == 1 and int(ap.sum()) == 32  # the disc of diameter 6
    for kind in ("decoder", "encoder"):
        f = m.filters(kind)[:, 0]
        assert torch.all(f[:, ap == 0] == 0)  # nothing outside the disc
        torch.testing.assert_close(f.sum((1, 2)), torch.zeros(f.shape[0]), atol=1e-5, rtol=0)
    norms = m.filters("decoder").flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    square = small(receptive_field=6, round_fields=False, zero_mean=False)
    assert bool((square.aperture == 1).all())
    assert float(square.filters("decoder")[:, 0].sum((1, 2)).abs().max()) > 1e-3


def test_shipped_runs_load_and_their_training_step_is_backprop():
    """The parameters keep their layout, so the shipped sheet runs load as they were written;
    on their trained weights (most codes shrunk to zero) the hand-written step is backprop."""
    from pathlib import Path

    from sparse_models.training.runs import SHIPPED_DIR, load_run

    path = Path(SHIPPED_DIR) / "sheet-pinwheels"
    if not (path / "config.json").exists():
        pytest.skip("no shipped sheet run")
    m = load_run(path).model
    # 7×7 positions on a 36×36 crop, 36 units each, 11×11 windows (8 px fields shifted by up to
    # 3 px: smooth retinotopy)
    assert isinstance(m, Sheet) and m.M.shape == (49, 36, 121)
    h, w = m.config.input_shape
    x = torch.randn(16, h * w, generator=torch.Generator().manual_seed(0))
    params = (m.M, m.D, m.b, m.gain)
    auto = m.loss(x)
    want = torch.autograd.grad(auto["loss"], params)
    got = m.gradients(x, None)
    for k in auto:
        torch.testing.assert_close(got[k], auto[k].detach(), rtol=1e-5, atol=1e-4)
    for p, gw in zip(params, want, strict=True):
        torch.testing.assert_close(p.grad, gw, rtol=1e-4, atol=1e-6)


def test_smooth_retinotopy_shifts_each_units_field_by_its_place_in_the_block():
    """Known answer: 9 units per position (3×3), stride 3: the block's rows and columns sit
    round(i·3/3) = 0, 1, 2 px into a window of 4 + 2 = 6 px, so a field moves 1 px per map unit,
    inside a block as from one block to the next; a unit's weights stay on its own field."""
    m = small(input_shape=[14, 13], receptive_field=4, stride=3, per_position=9, pool_size=3,
              round_fields=False, smooth_retinotopy=True)
    c = m.config
    assert c.offsets == ([0, 1, 2], [0, 1, 2]) and c.window == 6
    assert c.sheet == (3, 3)  # (14 − 6)//3 + 1, (13 − 6)//3 + 1
    assert small().config.window == 4 and small().config.offsets == ([0], [0, 0, 0])
    opt = torch.optim.Adam(m.param_groups(1e-2))
    for _ in range(3):
        m.train_step(torch.randn(8, 14 * 13), None, opt)
    f = m.filters("decoder")[:, 0]  # (N, 6, 6) in map order
    assert f.shape == (81, 6, 6)
    rows_map, cols_map = c.unit_map
    for cell in (0, 1, 2, 3, 10, 40, 80):
        r, q = divmod(cell, cols_map)
        dy, dx = r % 3, q % 3
        inside = torch.zeros(6, 6, dtype=torch.bool)
        inside[dy:dy + 4, dx:dx + 4] = True
        assert torch.all(f[cell][~inside] == 0) and f[cell][inside].abs().sum() > 0
    # where the fields' top-left corners lie in the image: 1 px per map unit, both ways
    corner = [3 * (q // 3) + q % 3 for q in range(cols_map)]
    assert corner == list(range(9))


def test_smooth_retinotopy_is_evenly_retinotopic():
    from sparse_models.analysis.retinotopy import retinotopy
    m = small(input_shape=[20, 20], receptive_field=5, stride=4, per_position=16, pool_size=3,
              round_fields=False, smooth_retinotopy=True)
    c = m.config
    assert c.offsets == ([0, 1, 2, 3], [0, 1, 2, 3]) and c.window == 8
    with torch.no_grad():  # every unit's decoder: one pixel in the middle of its field
        m.D.zero_()
        D = m.D.view(*c.sheet, 4, 4, 8, 8)
        for i in range(4):
            for j in range(4):
                D[:, :, i, j, i + 2, j + 2] = 1.0
    shape, _ = m.layout.map_shape()
    r = retinotopy(m.filters("decoder"), m.layout, shape)
    assert r["slope_rows"] == pytest.approx(1.0) and r["slope_cols"] == pytest.approx(1.0)
    assert r["scatter_px"] == pytest.approx(0.0, abs=1e-9)  # no jumps at the blocks' edges
    blocky = small(input_shape=[20, 20], receptive_field=5, stride=4, per_position=16,
                   pool_size=3, round_fields=False)
    with torch.no_grad():
        blocky.D.zero_()
        blocky.D.view(*blocky.config.sheet, 16, 25)[..., 12] = 1.0  # all in the field's middle
    rb = retinotopy(blocky.filters("decoder"), blocky.layout, blocky.layout.map_shape()[0])
    assert rb["scatter_px"] > 1.0  # a block's units look at one place: the centres jump


def test_smooth_retinotopy_windows_that_do_not_fit_are_refused_in_words():
    with pytest.raises(ConfigError, match="window .* larger than the 12×10 image"):
        small(receptive_field=9, stride=4, per_position=4, smooth_retinotopy=True)
    with pytest.raises(ConfigError, match="leaves 2×1 position.* for 8×8 px windows"):
        small(receptive_field=5, stride=4, per_position=16, smooth_retinotopy=True)


# --- reviving silent units (model.revive_every) ----------------------------------------------


def test_map_index_is_where_to_map_puts_a_unit():
    m = small(per_position=4)
    L, K = m.D.shape[:2]
    marks = torch.arange(L * K, dtype=torch.float32).reshape(1, L, K)
    on_map = m.to_map(marks)[0]
    for pos in range(L):
        for k in range(K):
            assert on_map[m.map_index(pos, k)] == pos * K + k


def test_revive_copies_a_live_neighbour_of_its_own_block_and_clears_its_optimiser_state():
    torch.manual_seed(0)
    m = small(per_position=9, receptive_field=6, input_shape=[14, 14], stride=4)  # 3×3 blocks
    x = torch.randn(16, 196)
    opt = torch.optim.Adam(m.param_groups(1e-2))
    for _ in range(3):  # optimiser state everywhere
        m.train_step(x, None, opt)
    before = {k: v.detach().clone() for k, v in m.named_parameters()}
    L, K = m.D.shape[:2]
    dead = torch.zeros(L, K, dtype=torch.bool)
    dead[0, 4] = True  # the middle of block 0: all 8 others are its neighbours
    dead[1, [0, 1, 3, 4]] = True  # a corner whose map neighbours in the block are all dead
    dead[2] = True  # a position with no live unit: left alone
    done = m.revive(dead, opt)
    assert sorted(done) == [(0, 4), (1, 0), (1, 1), (1, 3), (1, 4)]
    after = {k: v.detach() for k, v in m.named_parameters()}
    untouched = ~dead
    untouched[2] = True
    keep = torch.tensor([m.map_index(pos, k) for pos in range(L) for k in range(K)
                         if untouched[pos, k]])
    for k in ("M", "D"):
        torch.testing.assert_close(after[k][untouched], before[k][untouched])
    for k in ("b", "gain"):
        assert torch.equal(after[k][keep], before[k][keep])
    for pos, k in done:
        # close to one live unit of the same position (its copy, perturbed), not to a random one
        cos = torch.nn.functional.cosine_similarity(after["D"][pos, k], before["D"][pos], dim=-1)
        src = int(cos.masked_fill(dead[pos], -2).argmax())
        assert not dead[pos, src] and cos[src] > 0.9
        if (pos, k) == (0, 4):
            ka, kb = divmod(src, 3)
            assert abs(ka - 1) <= 1 and abs(kb - 1) <= 1
        i, j = m.map_index(pos, k), m.map_index(pos, src)
        assert after["b"][i] == before["b"][j] and after["gain"][i] == before["gain"][j]
    torch.testing.assert_close(after["D"].norm(dim=-1), torch.ones(L, K))  # constraints hold
    for p in (m.M, m.D):
        for v in opt.state[p].values():
            if torch.is_tensor(v) and v.shape == p.shape:
                assert torch.all(v[0, 4] == 0) and torch.any(v[0, 0] != 0)


def test_training_revives_units_that_never_fire_and_only_until_revive_until():
    torch.manual_seed(0)
    m = small(revive_every=2, revive_until=2)
    x = torch.randn(32, 120)
    silent = [m.map_index(0, 0), m.map_index(3, 1)]

    def silence():
        with torch.no_grad():
            m.M[0, 0] = 0
            m.M[3, 1] = 0
            m.b[silent] = 100.0

    silence()
    opt = torch.optim.Adam(m.param_groups(1e-3))
    m.train_step(x, None, opt)
    assert float(m.M.detach()[0, 0].abs().sum()) == 0  # not yet: step 1 of 2
    m.train_step(x, None, opt)
    assert float(m.M.detach()[0, 0].norm()) > 0 and float(m.b.detach()[silent].abs().max()) < 100
    assert bool((m.encode(x)[:, silent] != 0).all(1).any())
    silence()  # past revive_until they stay silent
    for _ in range(4):
        m.train_step(x, None, opt)
    assert float(m.M.detach()[0, 0].abs().sum()) == 0 and float(m.b.detach()[silent[0]]) > 99
    off = small(revive_every=0)  # off: a silent unit is never touched
    with torch.no_grad():
        off.M[0, 0] = 0
    for _ in range(4):
        off.train_step(x, None, torch.optim.Adam(off.param_groups(1e-3)))
    assert float(off.M.detach()[0, 0].abs().sum()) == 0
