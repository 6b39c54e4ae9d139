"""Run folders: names, atomic writes, strict loading of broken folders, shipped runs, listing."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sparse_models.config import ConfigError
from sparse_models.data import DataConfig
from sparse_models.models import build_model
from sparse_models.training import runs
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import (
    ANALYSIS_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    STATUS_FILE,
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    RunWriter,
    create_run,
    default_runs_dir,
    list_runs,
    load_run,
    read_run_config,
    sanitize_run_name,
    write_json_atomic,
)
from sparse_models.training.runs import format as run_format
from sparse_models.training.trainer import TrainConfig

DATA = DataConfig(source="gratings", n_patches=256, patch_size=8)


def small_config(model: str = "sparse_coding", **train) -> RunConfig:
    model_config = ({"n_units": 16, "n_iter": 5} if model == "sparse_coding" else
                    {"group": {"map_shape": [4, 4], "size": 3}})
    return RunConfig(model=model, model_config=model_config, data=DATA,
                     train=TrainConfig(**{"steps": 10, "batch_size": 32, "log_every": 5,
                                          "snapshot_every": 5, "checkpoint_every": 0, **train}))


def folder_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.fixture
def done_run(runs_dir: Path) -> Path:
    cfg = small_config()
    path = create_run(cfg, runs_dir, name="done")
    assert execute_run(cfg, path) == "completed"
    return path


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("my-run_1.v2", "my-run_1.v2"), ("my run", "my-run"), ("  lam=0.5  ", "lam-0.5"),
    ("a:b*c", "a-b-c"),
])
def test_sanitize_keeps_safe_characters(name, expected):
    assert sanitize_run_name(name) == expected


@pytest.mark.parametrize("name", [
    "../x", "/etc", "a/b", "..", "", ".", "   ", "a\\b", ".hidden", "x/../../y", "a..b",
    "***", "x" * 81,
])
def test_sanitize_rejects_unsafe_names(name):
    with pytest.raises(RunError):
        sanitize_run_name(name)


def test_create_run_names_are_unique_and_existing_names_refused(runs_dir):
    cfg = small_config()
    a, b = create_run(cfg), create_run(cfg)  # default folder: $SPARSE_LAB_RUNS
    assert a.parent == b.parent == runs_dir
    assert a != b and a.name.startswith("sparse_coding-") and b.name.startswith("sparse_coding-")
    create_run(cfg, runs_dir, name="mine")
    with pytest.raises(RunError, match="already exists"):
        create_run(cfg, runs_dir, name="mine")
    with pytest.raises(RunError):
        create_run(cfg, runs_dir, name="../escape")
    assert not (runs_dir.parent / "escape").exists()


def test_a_run_config_is_validated_when_it_is_made():
    # Validated once, at construction: a bad config never reaches create_run.
    with pytest.raises(ConfigError, match="unknown model"):
        RunConfig(model="no_such_model")
    with pytest.raises(ConfigError, match="n_units"):
        RunConfig(model="sparse_coding", model_config={"n_units": 0})
    with pytest.raises(ConfigError, match="unknown data source 'nope'"):
        RunConfig(model="sparse_coding", data={"source": "nope"})
    with pytest.raises(ConfigError, match="model must be a model name"):
        RunConfig(model="")
    with pytest.raises(ConfigError, match="train must be a TrainConfig"):
        RunConfig(model="sparse_coding", train={"steps": 3})


def test_default_runs_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSE_LAB_RUNS", str(tmp_path / "elsewhere"))
    assert default_runs_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("SPARSE_LAB_RUNS")
    assert default_runs_dir() == runs.REPO_ROOT / "runs"


# --- config ---------------------------------------------------------------------------------


def test_run_config_round_trips_through_json(runs_dir):
    cfg = RunConfig(model="topographic", model_config={"lam": 0.3, "input_shape": (8, 8)},
                    data=DATA, train=TrainConfig(steps=3, optimizer="sgd"), parent="p",
                    command="sparse-lab train")
    d = cfg.to_dict()
    assert d["data"]["source"] == "gratings" and d["model_config"]["input_shape"] == [8, 8]
    assert d["train"]["eval_every"] == cfg.train.eval_every
    again = RunConfig.from_dict(json.loads(json.dumps(d)))
    assert again == cfg
    assert type(again.model_config).__name__ == "TopographicConfig"
    assert again.model_config.input_shape == (8, 8) and again.model_config.lam == 0.3
    assert type(again.data).__name__ == "GratingsConfig" and again.data == DATA
    path = create_run(cfg, runs_dir)
    written = json.loads((path / CONFIG_FILE).read_text())
    assert written["format"] == runs.FORMAT and written["format_version"] == runs.FORMAT_VERSION == 2
    assert read_run_config(path) == cfg


def test_run_config_types_its_sections_and_fits_the_model_to_the_data():
    cfg = RunConfig(model="sparse_coding", model_config={"n_units": 4},
                    data={"source": "gratings", "patch_size": 6, "n_patches": 256})
    assert type(cfg.data).__name__ == "GratingsConfig" and cfg.data.patch_size == 6
    assert cfg.model_config.n_units == 4
    assert cfg.model_config.input_shape == (6, 6)  # not the config's default (12, 12)
    digits = RunConfig(model="sparse_coding", data={"source": "digits"})
    assert digits.model_config.input_shape == (8, 8)


def test_run_config_accepts_a_model_config_instance():
    from sparse_models.groups import GroupSpec
    from sparse_models.models.topographic import TopographicConfig

    mc = TopographicConfig(group=GroupSpec(map_shape=(4, 4), size=3), lam=0.2)
    cfg = RunConfig(model="topographic", model_config=mc, data=DATA)
    # the instance is kept, fitted to the data's 8×8 patches
    assert cfg.model_config == dataclasses.replace(mc, input_shape=(8, 8))
    assert cfg.model_config.group.map_shape == (4, 4) and cfg.model_config.lam == 0.2
    fits = dataclasses.replace(mc, input_shape=(8, 8))
    assert RunConfig(model="topographic", model_config=fits, data=DATA).model_config is fits
    assert build_model("topographic", cfg.model_config).config == cfg.model_config


def test_a_batch_larger_than_the_training_data_is_refused_when_the_config_is_made():
    with pytest.raises(ConfigError, match=r"the batch size \(512\) is larger than the number "
                                          r"of training samples \(256\)"):
        small_config(batch_size=512)
    assert small_config(batch_size=256).train.batch_size == 256
    # held-out samples are not training samples
    held_out = DataConfig(source="gratings", n_patches=256, n_test=100, patch_size=8)
    with pytest.raises(ConfigError, match=r"\(257\) is larger than .* \(256\)"):
        RunConfig(model="sparse_coding", data=held_out, train=TrainConfig(batch_size=257))
    with pytest.raises(ConfigError, match=r"training samples \(1497\)"):
        RunConfig(model="sparse_coding", data={"source": "digits", "n_test": 300},
                  train=TrainConfig(batch_size=1498))


def test_execute_run_needs_an_existing_folder(tmp_path):
    with pytest.raises(RunError, match="no run folder"):
        execute_run(small_config(), tmp_path / "missing")


def test_run_config_rejects_model_settings_its_model_does_not_have():
    # model_config is typed by the model's config class: what it cannot hold is refused.
    with pytest.raises(ConfigError, match="unknown key model.x for SparseCodingConfig"):
        RunConfig(model="sparse_coding", model_config={"x": object()})
    with pytest.raises(ConfigError, match="model.lam must be a number"):
        RunConfig(model="sparse_coding", model_config={"lam": object()})


# --- atomic writes --------------------------------------------------------------------------


def test_failed_replace_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    write_json_atomic(target, {"state": "old"})

    def crash(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(run_format.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        write_json_atomic(target, {"state": "new"})
    assert json.loads(target.read_text()) == {"state": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_crash_while_writing_weights_keeps_the_previous_weights(done_run, monkeypatch):
    before = (done_run / WEIGHTS_FILE).read_bytes()
    model = load_run(done_run).model
    with torch.no_grad():
        model.D.mul_(2)

    def crash(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(run_format.os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        RunWriter(done_run).save_weights(model, step=99)
    assert (done_run / WEIGHTS_FILE).read_bytes() == before
    assert not any(p.name.endswith(".tmp") for p in done_run.iterdir())
    monkeypatch.undo()
    assert load_run(done_run).weights_step == 10


# --- loading --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["sparse_coding", "topographic"])
def test_load_run_round_trip_gives_identical_outputs(runs_dir, model_name):
    cfg = small_config(model_name)
    assert cfg.model_config.input_shape == (8, 8)  # fitted to the data when it was made
    model = build_model(cfg.model, cfg.model_config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    path = create_run(cfg, runs_dir)
    RunWriter(path).save_weights(model, step=3)
    loaded = load_run(path)
    assert loaded.config == cfg
    assert not loaded.model.training
    x = torch.randn(5, 64)
    with torch.no_grad():
        assert torch.equal(loaded.model.encode(x), model.encode(x))
        assert torch.equal(loaded.model.decode(loaded.model.encode(x)),
                           model.decode(model.encode(x)))
    np.testing.assert_array_equal(loaded.filters(), model.filters().numpy())
    assert loaded.filters().shape == (16, 1, 8, 8)
    for kind in model.filter_kinds():
        np.testing.assert_array_equal(loaded.filters(kind), model.filters(kind).numpy())
    assert loaded.weights_step == 3
    assert loaded.map_shape == tuple(model.map_shape) and loaded.layout == model.layout
    assert loaded.map_periodic == model.map_periodic


def test_loaded_run_exposes_status_metrics_snapshots_and_data(done_run):
    run = load_run(done_run)
    assert run.name == "done" and not run.shipped
    assert run.status["state"] == "completed" and run.state == "completed"
    assert [m["step"] for m in run.metrics()] == [5, 10]
    steps, filters, kind = run.snapshots()
    assert steps.tolist() == [0, 5, 10] and filters.shape == (3, 16, 1, 8, 8)
    assert kind == "decoder" and filters.dtype == np.float32
    # snapshots are stored in half precision (display only)
    np.testing.assert_allclose(filters[-1], run.filters(), rtol=2e-3, atol=1e-3)
    assert run.dataset().x.shape == (256, 64)
    assert run.dataset() is run.dataset()


def test_snapshots_are_empty_arrays_when_none_were_recorded(runs_dir):
    cfg = small_config(snapshot_every=0)
    path = create_run(cfg, runs_dir)
    execute_run(cfg, path)
    steps, filters, kind = load_run(path).snapshots()
    assert steps.shape == (0,) and filters.shape == (0, 16, 1, 8, 8) and kind == "decoder"


def test_metrics_skip_a_line_cut_off_by_a_crash(done_run):
    with open(done_run / METRICS_FILE, "a") as f:
        f.write('{"step": 15, "loss": 1.')
    assert [m["step"] for m in load_run(done_run).metrics()] == [5, 10]


def test_weights_fall_back_to_the_checkpoint_while_training(done_run):
    (done_run / WEIGHTS_FILE).unlink()
    run = load_run(done_run)
    assert run.weights_step == 10
    (done_run / CHECKPOINT_FILE).unlink()
    with pytest.raises(RunError, match="no weights"):
        load_run(done_run)


def _write(path: Path, text: str | bytes) -> None:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)


BREAKAGES = {
    "config not JSON": (CONFIG_FILE, lambda p: _write(p, "{not json"), "not valid JSON"),
    "config a list": (CONFIG_FILE, lambda p: _write(p, "[1, 2]"), "not a run config"),
    "config foreign object": (CONFIG_FILE, lambda p: _write(p, '{"name": "x", "version": 3}'),
                              "not a run config"),
    "config other format": (CONFIG_FILE,
                            lambda p: _write(p, '{"format": "other-tool", "model": "x"}'),
                            "not written by Sparse Feature Lab"),
    "config unknown key": (CONFIG_FILE, lambda p: _write(
        p, p.read_text().replace('"command"', '"comand"')), "unknown key"),
    "config unknown model": (CONFIG_FILE, lambda p: _write(
        p, p.read_text().replace('"sparse_coding"', '"vanished_model"')), "unknown model"),
    "config bad model value": (CONFIG_FILE, lambda p: _write(
        p, p.read_text().replace('"n_units": 16', '"n_units": -3')), "n_units"),
    "config missing": (CONFIG_FILE, lambda p: p.unlink(), "missing"),
    "weights truncated": (WEIGHTS_FILE, lambda p: _write(p, p.read_bytes()[:200]), "corrupt"),
    "weights random bytes": (WEIGHTS_FILE,
                             lambda p: _write(p, np.random.default_rng(0).bytes(4096)), "corrupt"),
    "weights empty": (WEIGHTS_FILE, lambda p: _write(p, b""), "corrupt"),
    "weights of another size": (CONFIG_FILE, lambda p: _write(
        p, p.read_text().replace('"n_units": 16', '"n_units": 12')), "shape"),
}


@pytest.mark.parametrize("damage", ["\x00\x01", "", "[1, 2]"])
def test_a_damaged_status_costs_the_description_not_the_run(done_run, damage):
    _write(done_run / STATUS_FILE, damage)
    before = folder_bytes(done_run)
    run = load_run(done_run)  # the weights and config are fine: the run opens
    assert run.status == {} and run.weights_step is not None
    [info] = list_runs([done_run.parent])
    assert info.state == "completed" and info.name == done_run.name  # weights are there
    assert folder_bytes(done_run) == before


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_broken_folders_raise_run_error_naming_the_file_and_stay_untouched(done_run, case):
    filename, breaker, message = BREAKAGES[case]
    breaker(done_run / filename)
    before = folder_bytes(done_run)
    with pytest.raises(RunError, match=message) as info:
        load_run(done_run)
    shown = WEIGHTS_FILE if case == "weights of another size" else filename
    assert shown in str(info.value)
    assert folder_bytes(done_run) == before
    # Listing reads headers only, so it cannot see weights that are merely the wrong size.
    expected = "completed" if case == "weights of another size" else "broken"
    assert [r.state for r in list_runs([done_run.parent])] == [expected]
    assert folder_bytes(done_run) == before


def test_missing_folder_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="no run folder"):
        load_run(tmp_path / "nothing-here")


# --- analysis cache -------------------------------------------------------------------------


def test_analysis_cache_round_trip(done_run):
    run = load_run(done_run)
    assert run.read_analysis() == {}
    ok = run.write_analysis({"density": np.float32(3.0), "theta": np.arange(3),
                             "nothing": math.nan, "nested": {"t": torch.tensor([1.5])}})
    assert ok
    assert load_run(done_run).read_analysis() == {"density": 3.0, "theta": [0, 1, 2],
                                                  "nothing": None, "nested": {"t": [1.5]}}
    _write(done_run / ANALYSIS_FILE, "{broken")
    assert run.read_analysis() == {}


# --- shipped runs ---------------------------------------------------------------------------


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "checkpoints"
    d.mkdir()
    monkeypatch.setattr(run_format, "SHIPPED_DIR", d)  # what is_shipped checks against
    return d


def test_shipped_runs_are_read_only(shipped_dir):
    cfg = small_config()
    with pytest.raises(RunError, match="read-only"):
        create_run(cfg, shipped_dir)
    path = create_run(cfg, shipped_dir, name="example", allow_shipped=True)
    with pytest.raises(RunError, match="read-only"):
        execute_run(cfg, path)
    assert execute_run(cfg, path, allow_shipped=True) == "completed"
    before = folder_bytes(path)
    run = load_run(path)
    assert run.shipped
    assert run.write_analysis({"x": 1}) is False
    with pytest.raises(RunError, match="read-only"):
        RunWriter(path)
    with pytest.raises(RunError, match="read-only"):
        RunWriter(path / "sub" / "..")
    assert folder_bytes(path) == before
    (info,) = list_runs([shipped_dir])
    assert info.shipped and info.state == "completed" and info.steps == 10


# --- listing --------------------------------------------------------------------------------


def test_list_runs_never_raises_and_marks_broken_folders(done_run, runs_dir, tmp_path):
    broken = runs_dir / "broken-one"
    broken.mkdir()
    _write(broken / CONFIG_FILE, "garbage")
    (runs_dir / ".hidden").mkdir()
    (runs_dir / "stray-file.txt").write_text("hi")
    infos = {r.name: r for r in list_runs([runs_dir, tmp_path / "does-not-exist"])}
    assert set(infos) == {"done", "broken-one"}
    assert infos["done"].state == "completed" and infos["done"].model == "sparse_coding"
    assert infos["done"].steps == 10 and infos["done"].total_steps == 10
    assert infos["done"].created and not infos["done"].shipped
    assert infos["broken-one"].state == "broken" and CONFIG_FILE in infos["broken-one"].error


def test_list_runs_newest_first(runs_dir):
    for name, created in [("a", "2026-01-01T00:00:00"), ("b", "2026-03-01T00:00:00"),
                          ("c", "2026-02-01T00:00:00")]:
        path = create_run(small_config(), runs_dir, name=name)
        RunWriter(path).update_status(created=created)
    assert [r.name for r in list_runs([runs_dir])] == ["b", "c", "a"]


def test_a_run_whose_process_died_is_listed_as_interrupted(runs_dir):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(proc.stdout)
    path = create_run(small_config(), runs_dir, name="orphan")
    writer = RunWriter(path)
    writer.update_status(state="running", pid=dead_pid, host=socket.gethostname())
    assert [r.state for r in list_runs([runs_dir])] == ["interrupted"]
    writer.update_status(pid=os.getpid())  # this very process: still running
    assert [r.state for r in list_runs([runs_dir])] == ["running"]
