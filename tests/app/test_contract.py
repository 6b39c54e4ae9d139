"""The contract every registered model keeps: trained tiny, saved, reloaded, analysed, and drawn
on every generic page (Filters, Sparsity, Compare, and Orientation where it has a 2-D map)
without an exception and without an empty view that does not say why.

A new model family is checked here the moment it registers. `ToyAutoencoder` below is a model
written only in this file (its class and its `@register`, nothing else): it must appear on every
generic page too, in each of the layouts and filter shapes a model may declare.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from sparse_models.analysis.cached import analyze_run
from sparse_models.config import setting
from sparse_models.models import available_models
from sparse_models.models.base import Layout, PatchModel, register, unregister
from sparse_models.presets import build_run_config
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import RUNS_ENV, create_run, load_run

APP = str(Path(__file__).resolve().parents[2] / "app_ui" / "navigation.py")
TIMEOUT = 60
GENERIC_PAGES = ("../pages/filters.py", "../pages/sparsity.py", "../pages/compare.py",
                 "../pages/orientation.py", "../pages/overview.py")


@dataclass(frozen=True)
class ToyConfig:
    input_shape: tuple[int, int] = setting((6, 6), label="Input (h, w)", form=False)
    n_units: int = setting(8, label="Number of units", min=1, max=64, shape=True)
    layout: Literal["sheet", "tree", "none"] = setting("sheet", label="Layout")
    channels: int = setting(1, label="Filter channels", min=1, max=3)
    lam: float = setting(0.1, label="λ (sparsity weight)", min=0.0, max=10.0)


@register
class ToyAutoencoder(PatchModel):
    """A ReLU auto-encoder ½‖x − zD‖² + λ‖z‖₁, z = ReLU(xEᵀ): a toy for the contract test."""

    name = "toy_contract"
    Config = ToyConfig
    description = "A toy ReLU auto-encoder (contract test only)."
    energy_latex = r"\tfrac12\lVert x-zD\rVert^2+\lambda\lVert z\rVert_1"
    tiny: ClassVar[dict] = {"data.source": "gratings", "data.patch_size": 6,
                            "data.n_patches": 128, "train.steps": 4, "train.batch_size": 32,
                            "train.log_every": 2, "train.snapshot_every": 2}

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        h, w = config.input_shape
        g = torch.Generator().manual_seed(0)
        self.E = nn.Parameter(torch.randn(config.n_units, h * w, generator=g) * 0.1)
        self.D = nn.Parameter(torch.randn(config.n_units, h * w, generator=g) * 0.1)

    @property
    def n_units(self) -> int:
        return self.config.n_units

    @property
    def layout(self) -> Layout:
        c = self.config
        if c.layout == "sheet":
            return Layout("sheet", (2, c.n_units // 4), per_position=2)
        if c.layout == "tree":
            return Layout("tree", parents=(-1,) + tuple((i - 1) // 2 for i in range(1, c.n_units)))
        return Layout("none")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.E.T)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.D

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        r = x - self.decode(z)
        recon = 0.5 * (r * r).sum(-1).mean()
        sparsity = self.config.lam * z.sum(-1).mean()
        return {"loss": recon + sparsity, "reconstruction": recon, "sparsity": sparsity}

    def filter_kinds(self) -> tuple[str, ...]:
        return ("decoder", "encoder")

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        self.check_filter_kind(kind)
        f = self.filters_of(self.D if kind == "decoder" else self.E)  # (N, 1, h, w)
        return f.repeat(1, self.config.channels, 1, 1)


# Every registered model at its tiny size, and the toy in each layout and filter shape.
CASES = [(name, {}) for name in available_models() if name != ToyAutoencoder.name] + [
    (ToyAutoencoder.name, {"model.layout": "sheet"}),
    (ToyAutoencoder.name, {"model.layout": "tree", "model.channels": 2}),
    (ToyAutoencoder.name, {"model.layout": "none"}),
]
IDS = [f"{m}-{'-'.join(map(str, extra.values())) or 'tiny'}" for m, extra in CASES]


@pytest.fixture(scope="module", autouse=True)
def _toy_registered() -> Iterator[None]:
    yield
    unregister(ToyAutoencoder.name)


@pytest.fixture(scope="module")
def contract_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One tiny trained run per case, made through the same code path as a user's."""
    runs = tmp_path_factory.mktemp("contract-runs")
    old = os.environ.get(RUNS_ENV)
    os.environ[RUNS_ENV] = str(runs)
    made = {}
    for (model, extra), ident in zip(CASES, IDS, strict=True):
        cls = available_models()[model].model_cls
        config = build_run_config(model, {**cls.tiny, **extra})
        path = create_run(config, runs, name=ident)
        assert execute_run(config, path) == "completed", (path / "status.json").read_text()
        made[ident] = path
    yield made
    from app_ui.jobs import _manager_for

    _manager_for(str(runs)).shutdown(wait=True)
    if old is None:
        os.environ.pop(RUNS_ENV, None)
    else:
        os.environ[RUNS_ENV] = old


def test_every_registered_model_has_a_tiny_preset_and_its_declarations() -> None:
    for name, entry in available_models().items():
        cls = entry.model_cls
        assert cls.tiny, f"{name} declares no tiny settings for tests"
        assert cls.description and cls.energy_latex, f"{name} does not describe itself"
        config = build_run_config(name, cls.tiny)
        model = cls(config.model_config)
        assert model.input_shape == tuple(config.data.input_shape)
        for kind in model.filter_kinds():
            f = model.filters(kind)
            assert f.ndim == 4 and f.shape[0] == model.n_units, (name, kind, f.shape)
        assert model.default_filter_kind() in model.filter_kinds()
        rows, cols = model.layout.grid_shape(model.n_units)
        assert rows * cols == model.n_units


@pytest.mark.parametrize("ident", IDS)
def test_a_tiny_run_saves_reloads_and_is_analysed(contract_runs, ident) -> None:
    run = load_run(contract_runs[ident])
    x = run.dataset().x[:16]
    with torch.no_grad():
        z = run.model.encode(x)
        assert run.model.decode(z).shape == x.shape
    steps, snaps, kind = run.snapshots()
    assert len(steps) >= 2 and snaps.shape[1:] == run.filters(kind).shape
    report = analyze_run(run)
    assert report["n_units"] == run.model.n_units
    # A measure that does not apply is None and the report says why, in words.
    if report["pinwheel_count"] is None:
        assert isinstance(report["why_no_map"], str) and report["why_no_map"]
    else:
        assert report["why_no_map"] is None
    if report["pool_similarity_ratio"] is None:
        assert isinstance(report["why_no_pools"], str) and report["why_no_pools"]


def _view(page: str, run: str, other: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = run
    if other is not None:
        at.query_params["compare_a"] = run
        at.query_params["compare_b"] = other
    at.run()
    at.switch_page(page)
    at.run()
    return at


def _says_why(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("info", "caption", "warning")
                     for e in getattr(at, kind))


@pytest.mark.parametrize("ident", IDS)
@pytest.mark.parametrize("page", GENERIC_PAGES)
def test_every_model_renders_on_every_generic_page(contract_runs, ident, page) -> None:
    other = next(i for i in IDS if i != ident) if page.endswith("compare.py") else None
    at = _view(page, ident, other)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    drawn = len(at.get("plotly_chart")) + len(at.get("image")) + len(at.metric)
    if page.endswith("orientation.py"):
        shape, why = load_run(contract_runs[ident]).layout.map_shape()
        if shape is None or load_run(contract_runs[ident]).filters().shape[1] != 1:
            # No orientation map: the page says why, in words, and draws no empty chart.
            assert "no orientation map" in _says_why(at) or "channels" in _says_why(at)
            assert not at.get("plotly_chart")
            return
    assert drawn > 0, f"{page} drew nothing for {ident} and said: {_says_why(at)!r}"


@pytest.mark.parametrize("ident", IDS)
def test_every_model_opens_on_the_drsae_page(contract_runs, ident) -> None:
    """The DrSAE page draws a DrSAE (and a LISTA run's code-error view) and says in words why
    any other model's run has nothing to show there."""
    at = _view("../pages/drsae.py", ident)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    if load_run(contract_runs[ident]).config.model in ("drsae", "lista"):
        assert at.get("plotly_chart"), f"the DrSAE page drew nothing for {ident}"
    else:
        assert "not a DrSAE" in _says_why(at)
        assert not at.get("plotly_chart")


@pytest.mark.parametrize("ident", IDS)
def test_every_model_opens_on_the_convolutional_page(contract_runs, ident) -> None:
    """The Convolutional page draws a conv run and says in words why any other model's run has
    nothing to show there."""
    at = _view("../pages/conv.py", ident)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    if load_run(contract_runs[ident]).config.model == "conv":
        assert at.get("plotly_chart"), f"the Convolutional page drew nothing for {ident}"
    else:
        assert "not a convolutional one" in _says_why(at)
        assert not at.get("plotly_chart")
