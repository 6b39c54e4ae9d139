"""Sparse coding with lateral inhibition |z|ᵀS|z| (Gregor, Szlam & LeCun 2011)."""

import numpy as np
import pytest
import torch

from sparse_models.config import ConfigError, from_dict, to_dict
from sparse_models.data import data_config, load_dataset
from sparse_models.models import build_model
from sparse_models.models.inhibition import lateral_energy, lateral_solve, s_ascent_step
from sparse_models.models.lateral import LateralConfig, local_pattern, prune
from sparse_models.models.penalties import fista_solve
from sparse_models.trees import inhibition_pattern, make_tree

TINY_TREE = {"input_shape": [6, 6], "depth": 3, "branching": 2, "n_trees": 2, "lam": 0.2,
             "s_scale": 0.3}


def random_problem(seed, n=24, p=16, b=12, s_scale=0.3, pattern=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n, p, generator=g, dtype=dtype)
    D = D / D.norm(dim=1, keepdim=True)
    x = 2 * torch.randn(b, p, generator=g, dtype=dtype)
    A = torch.rand(n, n, generator=g, dtype=dtype) * s_scale
    S = A + A.T
    if pattern is not None:
        S = S * torch.as_tensor(pattern, dtype=dtype)
    return x, D, S.fill_diagonal_(0.0)


def test_with_s_zero_the_codes_are_the_lasso_codes_of_fista():
    x, D, _ = random_problem(0, n=40, p=36, b=32)
    S = torch.zeros(40, 40, dtype=torch.float64)
    ref, info = fista_solve(x, D, 0.3, n_iter=20_000, tol=1e-14)
    assert bool(info.converged.all())
    z, _ = lateral_solve(x, D, S, 0.3, n_iter=2000)
    assert torch.allclose(z, ref, atol=1e-8)
    assert ((z != 0) == (ref != 0)).all()  # the same support


def test_with_s_zero_the_model_encodes_like_the_sparse_coding_model():
    lat = build_model("lateral", {"input_shape": [6, 6], "structure": "all", "n_units": 20,
                                  "s_scale": 0.0, "lam": 0.3, "n_iter": 3000}).double()
    sc = build_model("sparse_coding", {"input_shape": [6, 6], "n_units": 20, "lam": 0.3,
                                       "n_iter": 3000}).double()
    with torch.no_grad():
        sc.D.copy_(lat.D)
    x = torch.randn(16, 36, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(lat.encode(x), sc.encode(x), atol=1e-7)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("accelerate", [True, False])
def test_the_energy_never_increases_over_the_iterations(seed, accelerate):
    pattern = inhibition_pattern(make_tree(3, 2, 2)) if seed % 2 else None  # 14 units
    n = 14 if seed % 2 else 24
    x, D, S = random_problem(seed, n=n, s_scale=[0.05, 0.3, 1.0][seed % 3], pattern=pattern)
    z, hist = lateral_solve(x, D, S, 0.2, n_iter=300, accelerate=accelerate, record=True)
    assert hist.shape == (301, x.shape[0])
    rises = hist[1:] - hist[:-1]
    assert float(rises.max()) <= 1e-12 * float(hist.abs().max())  # rounding only
    assert float((hist[0] - hist[-1]).min()) > 0  # and it does lower it on every row
    assert torch.allclose(hist[-1], lateral_energy(x, D, S, z, 0.2), rtol=1e-12, atol=1e-12)


def test_float32_training_sizes_never_raise_the_energy_either():
    x, D, S = random_problem(3, n=64, p=36, b=128, s_scale=0.5, dtype=torch.float32)
    _, hist = lateral_solve(x, D, S, 0.3, n_iter=60, record=True)
    assert float((hist[1:] - hist[:-1]).max()) <= 1e-5 * float(hist.abs().max())


def test_the_solution_is_a_fixed_point_with_thresholds_raised_by_2_s_abs_z():
    """At a minimiser each unit is optimal given the others: the energy in z_i alone is
    ½G_ii z_i² + (∇f − G_ii z_i) z_i + (λ + 2(S|z|)_i)|z_i| (S_ii = 0), so ∇f_i = −sign(z_i)·θ_i
    where z_i ≠ 0 and |∇f_i| ≤ θ_i where z_i = 0, θ = λ + 2S|z|."""
    for seed in range(3):
        x, D, S = random_problem(10 + seed, s_scale=0.2)
        z, _ = lateral_solve(x, D, S, 0.2, n_iter=1500)
        grad = (z @ D - x) @ D.T
        theta = 0.2 + 2 * z.abs() @ S
        on = z != 0
        assert on.any() and (~on).any()
        assert torch.allclose(grad[on], -torch.sign(z[on]) * theta[on], atol=1e-6)
        assert bool((grad[~on].abs() <= theta[~on] + 1e-6).all())


def test_warm_start_from_the_solution_stays_there():
    x, D, S = random_problem(4)
    z, _ = lateral_solve(x, D, S, 0.2, n_iter=3000)
    z2, hist = lateral_solve(x, D, S, 0.2, n_iter=5, z0=z, record=True)
    assert torch.allclose(z2, z, atol=1e-9)
    assert float((hist[0] - hist[-1]).abs().max()) < 1e-9


@pytest.mark.parametrize("lr", [0.0, 0.1, 10.0, 1e8])
def test_an_ascent_step_on_s_keeps_it_symmetric_non_negative_on_its_pattern_and_bounded(lr):
    pattern = torch.from_numpy(inhibition_pattern(make_tree(3, 3, 2)))  # 26 units
    n = pattern.shape[0]
    g = torch.Generator().manual_seed(0)
    S = torch.rand(n, n, generator=g) * pattern
    S = 0.5 * (S + S.T)
    codes = torch.randn(64, n, generator=g) * (torch.rand(64, n, generator=g) < 0.2)
    new = s_ascent_step(S, codes, lr, pattern, s_max=1.5)
    assert torch.equal(new, new.T)
    assert bool((new >= 0).all()) and bool((new <= 1.5).all())
    assert bool((new[~pattern] == 0).all()) and bool((new.diagonal() == 0).all())
    a = codes.abs()
    co = (a.T @ a) > 0
    grew = new > S
    # S grows exactly on allowed pairs that fired together and were below the bound
    if lr > 0:
        assert torch.equal(grew, co & pattern & (S < 1.5))
    else:
        assert torch.equal(new, S)
    if lr >= 1e8:
        assert bool((new[co & pattern] == 1.5).all())


def test_the_projection_repairs_an_s_that_left_its_set():
    pattern = torch.from_numpy(inhibition_pattern(make_tree(2, 3)))
    bad = torch.randn(4, 4) * 5  # asymmetric, negative, off-pattern, large
    new = s_ascent_step(bad, torch.zeros(1, 4), 0.1, pattern, s_max=2.0)
    assert torch.equal(new, new.T) and bool((new >= 0).all()) and bool((new <= 2).all())
    assert bool((new[~pattern] == 0).all())


def test_structures_put_s_on_their_patterns():
    tree = build_model("lateral", TINY_TREE)
    assert torch.equal(tree.S > 0, torch.from_numpy(inhibition_pattern(make_tree(3, 2, 2))))
    assert torch.allclose(tree.S[tree.S > 0], torch.tensor(0.3))
    assert tree.layout.kind == "tree" and tree.layout.parents == make_tree(3, 2, 2).parents
    local = build_model("lateral", {"input_shape": [6, 6], "structure": "local",
                                    "map_shape": [4, 5], "radius": 1.5, "wrap": False})
    assert local.layout.kind == "map" and local.layout.shape == (4, 5) and local.n_units == 20
    S = local.S > 0
    # unit 6 = (1, 1): its 3×3 neighbourhood (distance ≤ √2 < 1.5) is free, the rest inhibited
    free = {0, 1, 2, 5, 6, 7, 10, 11, 12}
    assert {j for j in range(20) if not S[6, j]} == free
    assert S[0, 4] and S[0, 15]  # (0, 0)–(0, 4) and (0, 0)–(3, 0): far apart without wrap
    wrapped = torch.from_numpy(local_pattern((4, 5), 1.5, True))
    assert not wrapped[0, 4] and not wrapped[0, 15] and not wrapped[0, 19]  # neighbours round the torus
    allp = build_model("lateral", {"input_shape": [6, 6], "structure": "all", "n_units": 7})
    assert allp.layout.kind == "none"
    assert torch.equal(allp.S > 0, ~torch.eye(7, dtype=torch.bool))
    assert tree.filters().shape == (14, 1, 6, 6)
    assert torch.equal(tree.filters()[3], tree.D.detach()[3].reshape(1, 6, 6))


def test_tree_inhibition_puts_active_units_on_one_path():
    """With strong inhibition on the tree pattern and the same atoms, far more inputs have their
    active units along one root-to-leaf path than with S = 0."""
    tree = build_model("lateral", {**TINY_TREE, "s_scale": 2.0, "s_max": 2.0, "n_iter": 200})
    free = build_model("lateral", {**TINY_TREE, "s_scale": 0.0, "n_iter": 200})
    with torch.no_grad():
        free.D.copy_(tree.D)
    x = 2 * torch.randn(200, 36, generator=torch.Generator().manual_seed(0))
    on_tree = tree.tree_measures(tree.encode(x))
    without = tree.tree_measures(free.encode(x))  # the same tree's statistics of free codes
    assert on_tree["path_share"] > 0.9 > without["path_share"]
    assert on_tree["clash_share"] < 0.1 < without["clash_share"]
    assert on_tree["unit_usage"].shape == (14,) and on_tree["branch_usage"].shape == (14,)
    assert {"parent_child_similarity", "all_pairs_similarity", "similarity_ratio"} <= set(on_tree)


def test_prune_removes_exactly_the_low_usage_branches_and_keeps_the_rest():
    model = build_model("lateral", {**TINY_TREE, "learn_s": True})
    with torch.no_grad():
        model.S.mul_(torch.rand(model.S.shape, generator=torch.Generator().manual_seed(0)) + 1)
        model.S.copy_(0.5 * (model.S + model.S.T))  # a learned-looking S
    usage = np.full(14, 0.5)
    usage[[2, 5, 6]] = [0.01, 0.01, 0.0]  # the branch under unit 2
    usage[[11]] = 0.02  # a leaf of the second tree
    usage[[9]] = 0.3  # kept (above the threshold)
    new = prune(model, usage, 0.05)
    kept = [0, 1, 3, 4, 7, 8, 9, 10, 12, 13]
    assert type(new) is type(model) and new.n_units == 10
    assert new.layout.parents == (-1, 0, 1, 1, -1, 4, 4, 5, 6, 6)
    assert new.config.parents == new.layout.parents
    assert torch.equal(new.D.detach(), model.D.detach()[kept])
    assert torch.equal(new.S, model.S[kept][:, kept])
    # the pruned model trains on, and its config survives a round trip (a run's config.json)
    assert from_dict(LateralConfig, to_dict(new.config)) == new.config
    opt = torch.optim.Adam(new.param_groups(1e-2))
    terms = new.train_step(torch.randn(32, 36), None, opt)
    assert torch.isfinite(terms["loss"])
    # a low parent takes its whole branch, even with busier children
    usage2 = np.ones(14)
    usage2[1] = 0.0
    assert prune(model, usage2, 0.5).n_units == 11


def test_prune_refuses_in_words():
    model = build_model("lateral", TINY_TREE)
    with pytest.raises(ConfigError, match="removes every branch"):
        prune(model, np.full(14, 0.1), 0.5)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        prune(model, np.full(14, 0.1), 1.5)
    with pytest.raises(ConfigError, match="one number per unit"):
        prune(model, np.ones(3), 0.1)
    flat = build_model("lateral", {"input_shape": [6, 6], "structure": "all", "n_units": 8})
    with pytest.raises(ConfigError, match="tree-structured"):
        prune(flat, np.ones(8), 0.1)


def test_branch_usage_from_data_drives_pruning():
    model = build_model("lateral", {**TINY_TREE, "s_scale": 1.0, "s_max": 1.0})
    x = 2 * torch.randn(100, 36, generator=torch.Generator().manual_seed(2))
    usage = model.branch_usage(x)
    codes = model.encode(x)
    for i in range(14):
        sub = list(model.tree.subtree(i))
        assert usage[i] == pytest.approx(float((codes[:, sub] != 0).any(1).float().mean()))
    threshold = float(np.sort(usage)[3]) + 1e-9  # at least the 4 least used branches go
    new = prune(model, usage, threshold)
    gone = {j for i in np.flatnonzero(usage < threshold) for j in model.tree.subtree(int(i))}
    assert len(gone) >= 4 and new.n_units == 14 - len(gone)


@pytest.mark.parametrize("settings,words", [
    ({"lam": -1}, "at least 0"),
    ({"s_scale": -0.5}, "S scale .* at least 0"),
    ({"depth": 0}, "Tree depth .* at least 1"),
    ({"branching": 0}, "Branching factor .* at least 1"),
    ({"depth": 7, "branching": 4, "n_trees": 1}, "5461 units.*limit of 4096"),
    ({"depth": 12, "branching": 64}, "limit of 4096"),
    ({"s_scale": 3.0, "s_max": 2.0}, "above the S bound"),
    ({"structure": "ring"}, "structure must be one of"),
    ({"structure": "local", "map_shape": [70, 70]}, "4900 units, above the limit"),
    ({"parents": [-1, 5]}, "parent must be"),
    ({"n_iter": 0}, "at least 1"),
])
def test_bad_settings_are_refused_in_words(settings, words):
    with pytest.raises(ConfigError, match=words):
        build_model("lateral", {"input_shape": [6, 6], **settings})


def _train_on(ds_x, settings, steps=30):
    model = build_model("lateral", settings)
    x = ds_x[:128]
    opt = torch.optim.Adam(model.param_groups(1e-2))
    first = float(model.loss(x)["loss"].detach())
    for _ in range(steps):
        terms = model.train_step(x, None, opt)
        assert all(torch.isfinite(v) for v in terms.values())
    norms = model.D.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    return model, first, float(model.loss(x)["loss"].detach())


def test_trains_on_tiny_natural_patches():
    ds = load_dataset(data_config({"source": "natural", "patch_size": 8, "n_patches": 256}))
    model, first, last = _train_on(ds.x, {"input_shape": [8, 8], "depth": 2, "branching": 4,
                                          "n_trees": 3, "n_iter": 30, "learn_s": True})
    assert last < first
    assert float(model.S.max()) <= model.config.s_max


def test_trains_on_digits():
    ds = load_dataset(data_config({"source": "digits"}))
    model, first, last = _train_on(ds.x, {"input_shape": [8, 8], "depth": 3, "branching": 3,
                                          "n_trees": 1, "lam": 0.02, "s_scale": 0.05,
                                          "n_iter": 30})
    assert last < first
    assert model.filters().shape == (13, 1, 8, 8)


# --- grown trees (init=branch) and λ per level (lam_depth) ---------------------------------------

def test_random_init_is_unchanged_by_the_new_settings():
    model = build_model("lateral", TINY_TREE)
    g = torch.Generator().manual_seed(0)
    D = torch.randn(model.n_units, 36, generator=g)
    assert torch.equal(model.D.detach(), D / D.norm(dim=1, keepdim=True))
    assert isinstance(model.lam, float) and model.lam == TINY_TREE["lam"]


@pytest.mark.parametrize("noise", [0.0, 0.3, 1.0])
def test_branch_init_makes_children_noisy_copies_of_their_parents(noise):
    model = build_model("lateral", {**TINY_TREE, "init": "branch", "init_noise": noise})
    D = model.D.detach()
    assert torch.allclose(D.norm(dim=1), torch.ones(model.n_units), atol=1e-6)
    tree = model.tree
    cos = D @ D.T
    edges = [(q, i) for i, q in enumerate(tree.parents) if q >= 0]
    pc = torch.stack([cos[q, i] for q, i in edges])
    # a unit vector plus an independent vector of length `noise`: cos ≈ 1/√(1 + noise²)
    assert float(pc.min()) > 1 / (1 + noise * noise) ** 0.5 - 0.35
    if noise == 0.0:
        assert torch.allclose(pc, torch.ones_like(pc), atol=1e-6)
    roots = torch.tensor(tree.roots)
    assert torch.equal(D[roots], build_model("lateral", TINY_TREE).D.detach()[roots])


def test_lam_per_level_weights_each_depth_and_keeps_the_energy_monotone():
    model = build_model("lateral", {**TINY_TREE, "lam_depth": 2.0}).double()
    depths = torch.from_numpy(model.tree.depths).double()
    assert torch.allclose(model.lam, TINY_TREE["lam"] * 2.0 ** depths)
    x = torch.randn(20, 36, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z, hist = model.infer(x, n_iter=200, record=True)
    assert bool((hist[1:] <= hist[:-1] + 1e-10).all())
    a = z.abs()
    direct = 0.5 * ((x - z @ model.D) ** 2).sum(1) + (a * model.lam).sum(1) \
        + ((a @ model.S) * a).sum(1)
    assert torch.allclose(model.energy(x, z), direct)
    # the fixed point: a unit is off exactly where |∇f| ≤ its own threshold λ_i + 2(S|z|)_i
    g = z @ (model.D @ model.D.T) - x @ model.D.T
    theta = model.lam + 2 * a @ model.S
    off = z == 0
    assert bool((g.abs()[off] <= theta.expand_as(g)[off] + 1e-6).all())
    assert build_model("lateral", {**TINY_TREE, "lam_depth": 1.0}).lam == TINY_TREE["lam"]


@pytest.mark.parametrize("settings, words", [
    ({"structure": "local", "init": "branch"}, "init=branch .* needs structure=tree"),
    ({"structure": "all", "lam_depth": 2.0}, "lam_depth .* needs structure=tree"),
    ({"lam_depth": 0.0}, "at least 0.01"),
    ({"init": "grown"}, "init"),
])
def test_bad_tree_settings_are_refused_in_words(settings, words):
    with pytest.raises(ConfigError, match=words):
        build_model("lateral", {"input_shape": [6, 6], **settings})


def test_the_local_map_recipe_is_a_valid_local_run_on_natural_patches():
    """`LOCAL_MAP` is the `--set` list that names the topographic map of a local S; the preset
    underneath stays the tree on digits (what `bench tree` trains)."""
    from sparse_models.models.lateral import LOCAL_MAP
    from sparse_models.presets import build_run_config, parse_overrides

    default = build_run_config("lateral")
    assert default.model_config.structure == "tree" and default.data.source == "digits"
    config = build_run_config("lateral", parse_overrides(list(LOCAL_MAP)))
    assert config.model_config.structure == "local" and config.data.source == "natural"
    rows, cols = config.model_config.map_shape
    assert rows * cols == build_model("lateral", to_dict(config.model_config)).n_units


@pytest.mark.parametrize("structure, words", [
    ("local", ["no pools", "4×5 map", "(a torus)", "lateral inhibition", "closer than 1.5"]),
    ("tree", ["Tree page", "structure=local", "--set model.structure=local"]),
    ("all", ["no particular order", "structure=local"]),
])
def test_the_model_says_in_words_what_orders_its_units(structure, words):
    model = build_model("lateral", {"input_shape": [6, 6], "structure": structure,
                                    "map_shape": [4, 5], "depth": 2, "branching": 2})
    text = model.map_order
    for w in words:
        assert w in text, (w, text)
