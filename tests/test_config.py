"""Config round-trips, `key=value` parsing and the presets that build a run config."""

import pytest

from sparse_models.config import ConfigError, parse_value, set_dotted
from sparse_models.presets import build_run_config, default_sections, resolve_key


@pytest.mark.parametrize("text,value", [
    ("3", 3), ("0.5", 0.5), ("true", True), ("False", False), ("[5, 5]", [5, 5]),
    ("none", None), ("zca", "zca"), ("~/photos", "~/photos"),
])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_set_dotted_creates_sections():
    d = {}
    set_dotted(d, "model.group.size", 5)
    assert d == {"model": {"group": {"size": 5}}}


def test_bare_and_dotted_keys_resolve():
    s = default_sections("topographic")
    assert resolve_key("lam", s) == "model.lam"
    assert resolve_key("group.size", s) == "model.group.size"
    assert resolve_key("steps", s) == "train.steps"
    assert resolve_key("data.patch_size", s) == "data.patch_size"
    with pytest.raises(ConfigError, match="unknown key 'lamb'"):
        resolve_key("lamb", s)
    with pytest.raises(ConfigError, match="unknown key 'model.nope'"):
        resolve_key("model.nope", s)
    with pytest.raises(ConfigError, match="ambiguous"):
        resolve_key("seed", s)


def test_build_run_config_applies_and_validates_overrides():
    cfg = build_run_config("topographic", [("lam", 0.3), ("group.size", 3), ("steps", 10)])
    assert cfg.model_config["lam"] == 0.3
    assert cfg.model_config["group"]["size"] == 3
    assert cfg.train.steps == 10
    with pytest.raises(ConfigError, match="must be a number"):
        build_run_config("topographic", [("lam", "big")])
    with pytest.raises(ConfigError, match="larger than the 16×16 map"):
        build_run_config("topographic", [("group.size", 20)])
    with pytest.raises(ConfigError, match="must be an integer"):
        build_run_config("topographic", [("train.steps", 2.5)])


def test_configs_build_after_their_modules_leave_sys_modules(monkeypatch):
    """Streamlit's file watcher drops edited modules while a training thread may still run."""
    import sys

    from sparse_models.config import from_dict
    from sparse_models.data import DataConfig
    from sparse_models.training.trainer import TrainConfig

    for name in [m for m in sys.modules if m.startswith("sparse_models")]:
        monkeypatch.delitem(sys.modules, name)
    assert from_dict(TrainConfig, {"steps": 5}).steps == 5
    assert from_dict(DataConfig, {"patch_size": 8}).patch_size == 8
