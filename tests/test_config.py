"""Config round-trips, `key=value` parsing and the presets that build a run config."""

import dataclasses

import pytest

from sparse_models.config import (
    ConfigError,
    check_ranges,
    field_infos,
    parse_value,
    set_dotted,
    setting,
)
from sparse_models.data import DataConfig
from sparse_models.presets import build_run_config, default_sections, parse_overrides, resolve_key


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
    # model_config is the model's typed config instance, not a dict
    assert type(cfg.model_config).__name__ == "TopographicConfig"
    assert cfg.model_config.lam == 0.3
    assert cfg.model_config.group.size == 3
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
    from sparse_models.data import NaturalConfig, data_config
    from sparse_models.training.trainer import TrainConfig

    for name in [m for m in sys.modules if m.startswith("sparse_models")]:
        monkeypatch.delitem(sys.modules, name)
    assert from_dict(TrainConfig, {"steps": 5}).steps == 5
    assert from_dict(NaturalConfig, {"patch_size": 8}).patch_size == 8
    assert data_config({"source": "gratings", "patch_size": 8}).patch_size == 8


# --- form metadata: setting, field_infos, check_ranges ----------------------------------------


@dataclasses.dataclass(frozen=True)
class _Toy:
    size: int = setting(3, label="Window size", min=1, max=10, help="Side of the window.")
    mode: str = setting("a", label="Mode")
    rate: float = setting(0.5, label="Rate", min=0.0, when={"mode": ["b", "c"]})
    hidden: int = setting(2, label="Internal", form=False)
    plain: int = -7  # a field without `setting`: no label, no range

    def __post_init__(self) -> None:
        check_ranges(self, "toy.")


def test_field_infos_describe_every_field_in_order():
    infos = field_infos(_Toy)
    assert [i.name for i in infos] == ["size", "mode", "rate", "hidden", "plain"]
    size, mode, rate, hidden, plain = infos
    assert (size.label, size.help, size.min, size.max, size.default) == (
        "Window size", "Side of the window.", 1, 10, 3)
    assert size.type is int and rate.type is float and mode.type is str
    assert rate.when == {"mode": ["b", "c"]} and size.when == {}
    assert hidden.form is False and size.form is True
    assert (plain.label, plain.min, plain.max, plain.default) == ("plain", None, None, -7)


def test_a_value_outside_a_settings_range_names_the_label_and_the_key():
    assert _Toy(size=1).size == 1 and _Toy(size=10).size == 10  # the range is inclusive
    with pytest.raises(ConfigError, match=r"^Window size \(toy\.size\) must be at most 10, got 11$"):
        _Toy(size=11)
    with pytest.raises(ConfigError, match=r"Window size \(toy\.size\) must be at least 1, got 0"):
        _Toy(size=0)
    with pytest.raises(ConfigError, match=r"Rate \(toy\.rate\) must be at least 0"):
        _Toy(rate=-0.1)
    with pytest.raises(ConfigError, match=r"Rate \(toy\.rate\) must be a finite number"):
        _Toy(rate=float("nan"))
    assert _Toy(plain=-10**9).plain == -10**9  # no range, no check
    assert _Toy(mode="zzz").mode == "zzz"  # not a number: ranges do not apply


def test_field_info_applies_under_its_when():
    rate = {i.name: i for i in field_infos(_Toy)}["rate"]
    assert rate.applies({"mode": "b"}) and rate.applies({"mode": "c"})
    assert not rate.applies({"mode": "a"}) and not rate.applies({})
    single = dataclasses.replace(rate, when={"mode": "b"})  # one value instead of a list
    assert single.applies({"mode": "b"}) and not single.applies({"mode": "c"})
    both = dataclasses.replace(rate, when={"mode": "b", "size": 3})  # every condition must hold
    assert both.applies({"mode": "b", "size": 3}) and not both.applies({"mode": "b", "size": 4})
    size = {i.name: i for i in field_infos(_Toy)}["size"]
    assert size.applies({}) and size.applies({"mode": "anything"})


def test_the_models_optimal_inference_settings_apply_only_to_optimal_inference():
    from sparse_models.models.topographic import TopographicConfig

    infos = {i.name: i for i in field_infos(TopographicConfig)}
    assert not infos["alpha"].applies({"inference": "amortized"})
    assert infos["alpha"].applies({"inference": "optimal"})
    assert infos["lam"].applies({"inference": "amortized"})
    assert infos["input_shape"].form is False  # set from the data, not by a form


@pytest.mark.parametrize("key, value, message", [
    ("lam", 1000, r"λ \(sparsity weight\) \(model\.lam\) must be at most 100"),
    ("data.patch_size", 100, r"Patch size \(px\) \(data\.patch_size\) must be at most 64"),
    ("train.lr", 1e30, r"Learning rate \(train\.lr\) must be at most 10"),
    ("train.eval_every", -1, r"eval_every"),
])
def test_run_configs_enforce_the_ranges(key, value, message):
    with pytest.raises(ConfigError, match=message):
        build_run_config("sparse_coding", {key: value})


def test_switching_the_data_source_keeps_the_settings_both_sources_have():
    # The source is applied first, whatever its place among the overrides.
    cfg = build_run_config("sparse_coding", [("data.patch_size", 8), ("data.n_patches", 300),
                                             ("data.source", "gratings")])
    assert cfg.data.source == "gratings" and type(cfg.data).__name__ == "GratingsConfig"
    assert (cfg.data.patch_size, cfg.data.n_patches) == (8, 300)
    assert "images" not in cfg.to_dict()["data"] and "whitening" not in cfg.to_dict()["data"]
    assert tuple(cfg.model_config.input_shape) == (8, 8)  # fitted to the data
    with pytest.raises(ConfigError, match="unknown data source 'nope'"):
        build_run_config("sparse_coding", {"data.source": "nope"})


def test_switching_from_patches_to_digits_gives_a_valid_digits_config():
    # The patch sources' n_test default (0) is below the digits' minimum (1): shared settings
    # left at the old source's defaults are not carried over; changed ones are.
    digits = build_run_config("sparse_coding", {"source": "digits"})
    assert digits.data.source == "digits" and tuple(digits.model_config.input_shape) == (8, 8)
    assert digits.data == DataConfig("digits")
    base = default_sections("sparse_coding")
    base["data"]["seed"] = 5  # changed on the natural source, then the source is switched
    seeded = build_run_config("sparse_coding", {"source": "digits"}, base=base)
    assert seeded.data.seed == 5 and seeded.data.n_test == DataConfig("digits").n_test
    assert "patch_size" not in digits.to_dict()["data"]
    with pytest.raises(ConfigError, match="unknown key 'data.patch_size'"):
        build_run_config("sparse_coding", {"source": "digits", "data.patch_size": 8})
    with pytest.raises(ConfigError, match=r"Held-out digits \(data.n_test\) must be at least 1"):
        build_run_config("sparse_coding", {"source": "digits", "data.n_test": 0})


def test_a_bare_none_is_the_word_for_a_text_setting_and_null_for_a_number():
    """`--set model.group.kind=none` picks the pool kind "none"; `sigma=none` clears a width."""
    cfg = build_run_config("topographic", parse_overrides(["model.group.kind=none",
                                                           "model.group.sigma=none"]))
    assert cfg.model_config.group.kind == "none"
    assert cfg.model_config.group.sigma is None
