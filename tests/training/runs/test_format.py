"""The run folder's config.json: format 2 as written, and version-1 folders still readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparse_models.data import data_config_dict
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    RunConfig,
    RunError,
    create_run,
    load_run,
    read_run_config,
    upgrade_v1,
)
from sparse_models.training.trainer import TrainConfig

# A config.json as format 1 wrote it: the data section lists every patch setting of every
# source (here `images` and `folder: null` for gratings), and `train` has no `eval_every`.
V1_CONFIG = {
    "format": FORMAT,
    "format_version": 1,
    "model": "sparse_coding",
    "model_config": {"input_shape": [8, 8], "n_units": 16, "lam": 0.5, "solver": "fista",
                     "n_iter": 5, "positive": False, "seed": 0},
    "data": {"source": "gratings", "images": ["camera", "astronaut"], "folder": None,
             "patch_size": 8, "n_patches": 256, "whitening": "olshausen", "downscale": 2,
             "contrast_normalize": False, "seed": 0},
    "train": {"steps": 10, "batch_size": 32, "lr": 0.01, "optimizer": "adam", "device": "auto",
              "seed": 0, "log_every": 5, "snapshot_every": 5, "checkpoint_every": 0,
              "threads": 0},
    "parent": None,
    "command": "python -m sparse_models train sparse_coding --set data.source=gratings",
}


def _write(path: Path, data: dict) -> None:
    (path / CONFIG_FILE).write_text(json.dumps(data, indent=2))


def _v1_as_v2() -> RunConfig:
    return RunConfig.from_dict(upgrade_v1({k: v for k, v in V1_CONFIG.items()
                                           if not k.startswith("format")}))


def test_config_json_is_written_in_format_2(runs_dir):
    cfg = _v1_as_v2()
    path = create_run(cfg, runs_dir)
    written = json.loads((path / CONFIG_FILE).read_text())
    assert written["format"] == FORMAT and written["format_version"] == FORMAT_VERSION == 2
    # the data section holds only the source's own settings
    assert written["data"] == data_config_dict(cfg.data)
    assert written["data"]["source"] == "gratings" and "n_test" in written["data"]
    assert not {"images", "folder", "whitening", "downscale"} & set(written["data"])
    assert "eval_every" in written["train"]


def test_a_version_1_config_still_loads(runs_dir):
    path = runs_dir / "old"
    path.mkdir()
    _write(path, V1_CONFIG)
    cfg = read_run_config(path)
    assert cfg.model == "sparse_coding" and cfg.model_config.n_units == 16
    assert type(cfg.data).__name__ == "GratingsConfig"
    assert (cfg.data.patch_size, cfg.data.n_patches, cfg.data.n_test) == (8, 256, 0)
    assert cfg.train == TrainConfig(steps=10, batch_size=32, lr=0.01, log_every=5,
                                    snapshot_every=5, checkpoint_every=0)  # eval_every: default
    assert cfg.command == V1_CONFIG["command"]


def test_a_version_1_run_opens_and_resumes(runs_dir):
    # Train a run, then give it the config.json format 1 wrote for the same settings.
    cfg = _v1_as_v2()
    path = create_run(cfg, runs_dir, name="old-run")
    assert execute_run(cfg, path) == "completed"
    _write(path, V1_CONFIG)
    run = load_run(path)
    assert run.config == cfg and run.weights_step == 10
    assert run.filters().shape == (16, 1, 8, 8)
    assert run.dataset().x.shape == (256, 64)


@pytest.mark.parametrize("section, kept", [
    ({"source": "natural", "images": ["camera"], "folder": None, "patch_size": 12,
      "n_patches": 20000, "whitening": "zca", "downscale": 2, "contrast_normalize": True,
      "seed": 3},
     {"source": "natural", "images": ["camera"], "patch_size": 12, "n_patches": 20000,
      "whitening": "zca", "downscale": 2, "contrast_normalize": True, "seed": 3}),
    ({"source": "folder", "images": ["camera"], "folder": "/photos", "patch_size": 10,
      "n_patches": 500, "whitening": "olshausen", "downscale": 1, "contrast_normalize": False,
      "seed": 0},
     {"source": "folder", "folder": "/photos", "patch_size": 10, "n_patches": 500,
      "whitening": "olshausen", "downscale": 1, "contrast_normalize": False, "seed": 0}),
    ({"images": ["camera"], "folder": None, "patch_size": 12},  # no source: natural
     {"source": "natural", "images": ["camera"], "patch_size": 12}),
])
def test_upgrade_v1_keeps_only_the_sources_own_settings(section, kept):
    old = {"model": "sparse_coding", "data": section, "train": {"steps": 3}}
    new = upgrade_v1(old)
    assert new["data"] == kept
    assert new["model"] == "sparse_coding" and new["train"] == {"steps": 3}
    assert old["data"] == section  # the input is left alone


def test_upgrade_v1_leaves_an_unknown_source_for_validation_to_name(runs_dir):
    data = {**V1_CONFIG, "data": {**V1_CONFIG["data"], "source": "vanished"}}
    assert upgrade_v1(data)["data"] == data["data"]
    path = runs_dir / "odd"
    path.mkdir()
    _write(path, data)
    with pytest.raises(RunError, match="unknown data source 'vanished'"):
        read_run_config(path)


def test_a_newer_format_is_refused_with_a_clear_message(runs_dir):
    path = runs_dir / "future"
    path.mkdir()
    _write(path, {**V1_CONFIG, "format_version": FORMAT_VERSION + 1})
    with pytest.raises(RunError, match=f"format version {FORMAT_VERSION + 1}; this code reads "
                                       f"up to {FORMAT_VERSION}"):
        read_run_config(path)
