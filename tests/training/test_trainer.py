"""The training loop: step counting, callbacks, stopping, divergence, reproducibility."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from sparse_models.config import ConfigError, from_dict, to_dict
from sparse_models.models.base import SparseModel
from sparse_models.training import optim
from sparse_models.training import trainer as trainer_mod
from sparse_models.training.trainer import (
    StepInfo,
    TrainConfig,
    TrainingDiverged,
    lr_factor,
    make_optimizer,
    resolve_device,
    train,
)


@dataclass(frozen=True)
class TinyConfig:
    input_shape: tuple[int, int] = (4, 4)
    n_units: int = 8
    noise: float = 0.0  # denoising: draws from torch's global RNG inside every step
    bad_at_step: int = 0  # make the 'recon' term non-finite on this (1-based) call; 0 = never
    bad_value: float = math.nan


class TinyModel(SparseModel):
    """A linear auto-encoder with an L1 code penalty, small enough for hundreds of steps/s."""

    name = "tiny_test_model"
    Config = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        p = config.input_shape[0] * config.input_shape[1]
        self.W = nn.Parameter(torch.randn(config.n_units, p) * 0.1)
        self.calls = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.W.T)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W

    def loss(self, x, y=None):
        self.calls += 1
        if self.config.noise:
            x = x + self.config.noise * torch.randn_like(x)
        z = self.encode(x)
        recon = 0.5 * ((x - self.decode(z)) ** 2).sum(-1).mean()
        if self.calls == self.config.bad_at_step:
            recon = recon * self.config.bad_value
        l1 = 0.1 * z.abs().sum(-1).mean()
        return {"loss": recon + l1, "recon": recon, "l1": l1}


def endless(seed: int = 0, n: int = 64, batch: int = 8, p: int = 16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g)
    while True:
        idx = torch.randint(0, n, (batch,), generator=g)
        yield x[idx], None


def tiny(**kw) -> TinyModel:
    torch.manual_seed(1)
    return TinyModel(TinyConfig(**kw))


def test_counts_steps_and_reports_on_log_steps_and_the_last_step():
    model = tiny()
    infos: list[StepInfo] = []
    result = train(model, endless(), TrainConfig(steps=23, batch_size=8, log_every=5),
                   on_step=infos.append)
    assert model.calls == 23
    assert result.step == 23 and not result.stopped
    assert [i.step for i in infos] == [5, 10, 15, 20, 23]
    assert all(i.total_steps == 23 for i in infos)
    assert set(infos[-1].metrics) == {"loss", "recon", "l1"}
    assert all(isinstance(v, float) for v in infos[-1].metrics.values())
    assert result.metrics == infos[-1].metrics
    assert infos[-1].elapsed_s >= infos[0].elapsed_s > 0
    assert infos[-1].samples_per_s > 0


def test_start_step_trains_only_the_remaining_steps():
    model = tiny()
    infos: list[StepInfo] = []
    result = train(model, endless(), TrainConfig(steps=15, batch_size=8, log_every=5),
                   on_step=infos.append, start_step=10)
    assert model.calls == 5
    assert [i.step for i in infos] == [15]
    assert result.step == 15


def test_after_step_sees_every_step():
    seen: list[int] = []
    train(tiny(), endless(), TrainConfig(steps=7, log_every=3), after_step=seen.append)
    assert seen == list(range(1, 8))


def test_should_stop_is_polled_before_every_step():
    model = tiny()
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) == 7

    result = train(model, endless(), TrainConfig(steps=100, log_every=5), should_stop=should_stop)
    assert result.stopped
    assert result.step == 6 and model.calls == 6


def test_a_stop_from_another_thread_is_honoured_within_a_second():
    class Slow(TinyModel):
        def train_step(self, x, y, optimizer):
            time.sleep(0.02)
            return super().train_step(x, y, optimizer)

    torch.manual_seed(1)
    model = Slow(TinyConfig())
    flag = threading.Event()
    set_at: list[float] = []

    def press_stop() -> None:
        set_at.append(time.monotonic())
        flag.set()

    timer = threading.Timer(0.3, press_stop)
    timer.start()
    result = train(model, endless(), TrainConfig(steps=1_000_000, log_every=10),
                   should_stop=flag.is_set)
    returned = time.monotonic()
    timer.join()
    assert result.stopped and 0 < result.step < 1_000_000
    assert returned - set_at[0] < 1.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_raises_training_diverged_at_that_step(bad):
    model = tiny(bad_at_step=4, bad_value=bad)
    infos: list[StepInfo] = []
    with pytest.raises(TrainingDiverged, match="recon") as info:
        train(model, endless(), TrainConfig(steps=50, log_every=2), on_step=infos.append)
    assert info.value.step == 4
    assert info.value.term == "recon"
    assert [i.step for i in infos] == [2]  # nothing reported from the diverged step on


def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not():
    def run(seed: int, global_seed: int) -> torch.Tensor:
        model = tiny(noise=0.1)
        torch.manual_seed(global_seed)  # must not matter: train seeds from cfg.seed
        train(model, endless(seed=seed), TrainConfig(steps=30, seed=seed, log_every=10))
        return model.W.detach().clone()

    a, b = run(seed=3, global_seed=0), run(seed=3, global_seed=123)
    assert torch.equal(a, b)
    assert not torch.equal(a, run(seed=4, global_seed=0))


def test_optimizer_choice_and_param_groups():
    class Scaled(TinyModel):
        def param_groups(self, lr):
            return [{"params": [self.W], "lr": lr / 4}]

    torch.manual_seed(1)
    model = Scaled(TinyConfig())
    sgd = make_optimizer(model, TrainConfig(optimizer="sgd", lr=0.2))
    assert isinstance(sgd, optim.SGD)
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.05)
    assert isinstance(make_optimizer(model, TrainConfig()), optim.AdamW)


def test_lr_schedule_warms_up_linearly_and_decays_along_a_cosine_to_zero():
    cfg = TrainConfig(steps=10, lr_warmup=4, lr_decay="cosine")
    f = [lr_factor(s, cfg) for s in range(1, 11)]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after the warm-up: 6 steps along half a cosine, from 1 down to 0 after the last step
    assert f[4:] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)])
    assert all(a > b for a, b in zip(f[4:], f[5:], strict=False)) and 0 < f[-1] < 0.07
    assert [lr_factor(s, TrainConfig(steps=5)) for s in range(1, 6)] == [1.0] * 5
    cos_only = TrainConfig(steps=4, lr_decay="cosine")
    assert [lr_factor(s, cos_only) for s in range(1, 5)] == pytest.approx([1.0, 0.853553, 0.5,
                                                                            0.146447], abs=1e-6)


def test_the_trainer_applies_the_schedule_to_every_step():
    class Records(TinyModel):
        seen: list[float] = []

        def train_step(self, x, y, optimizer):
            self.seen.append(optimizer.lr_scale)
            return super().train_step(x, y, optimizer)

    torch.manual_seed(1)
    model = Records(TinyConfig())
    cfg = TrainConfig(steps=8, lr_warmup=2, lr_decay="cosine", optimizer="sgd", lr=0.1)
    train(model, endless(), cfg)
    assert model.seen == pytest.approx([lr_factor(s, cfg) for s in range(1, 9)])


def test_sgd_and_adam_steps_scale_with_lr_scale():
    for make in (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.AdamW(ps, lr=0.1)):
        moved = []
        for scale in (1.0, 0.25):
            p = nn.Parameter(torch.ones(3))
            opt = make([p])
            opt.lr_scale = scale
            p.grad = torch.tensor([1.0, -2.0, 0.5])
            opt.step()
            moved.append(p.detach() - 1.0)
        assert torch.allclose(moved[1], 0.25 * moved[0])


def test_a_resumed_run_continues_the_schedule():
    cfg = TrainConfig(steps=12, lr_warmup=3, lr_decay="cosine", optimizer="sgd", lr=0.05)
    whole = tiny()
    train(whole, endless(), cfg)
    parts = tiny()
    batches = endless()
    first = train(parts, batches, cfg, should_stop=lambda: parts.calls >= 5)
    assert first.step == 5 and first.stopped
    train(parts, batches, cfg, start_step=5, optimizer=first.optimizer)
    assert torch.equal(whole.W, parts.W)


def test_a_given_optimizer_is_used_and_returned():
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    before = model.W.detach().clone()
    result = train(model, endless(), TrainConfig(steps=5), optimizer=opt)
    assert result.optimizer is opt
    assert torch.equal(model.W, before)  # lr 0: the given optimiser, not a fresh Adam, ran


def test_train_config_round_trips_through_a_dict():
    cfg = TrainConfig(steps=7, lr=0.01, optimizer="sgd", device="cuda:1", snapshot_every=0)
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg


@pytest.mark.parametrize("bad", [
    {"steps": 0}, {"steps": 1.5}, {"batch_size": -1}, {"lr": 0.0}, {"lr": math.nan},
    {"optimizer": "rmsprop"}, {"device": "gpu"}, {"device": "cuda:x"}, {"log_every": 0},
    {"snapshot_every": -1}, {"checkpoint_every": -5}, {"threads": -1}, {"seed": -1},
    {"lr_warmup": -1}, {"lr_warmup": 2.5}, {"lr_decay": "step"},
])
def test_train_config_rejects_bad_values(bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=f"train.{key}"):
        TrainConfig(**bad)


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(trainer_mod.torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ConfigError, match="train.device"):
        resolve_device("tpu")


def test_resolve_device_auto_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(trainer_mod.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(trainer_mod.torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ConfigError, match="1 CUDA device"):
        resolve_device("cuda:3")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_cuda_and_detects_divergence_at_log_steps():
    model = tiny().to("cuda")
    gen = ((x.cuda(), y) for x, y in endless())
    result = train(model, gen, TrainConfig(steps=20, log_every=5, device="cuda"))
    assert result.step == 20 and model.W.device.type == "cuda"
    bad = tiny(bad_at_step=7).to("cuda")
    gen = ((x.cuda(), y) for x, y in endless())
    with pytest.raises(TrainingDiverged) as info:
        train(bad, gen, TrainConfig(steps=20, log_every=5, device="cuda"))
    assert info.value.step == 10  # found at the next log step, not per step (no sync)
