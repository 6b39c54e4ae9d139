"""The data-source registry and what every source promises: a config that builds from defaults,
round-trips through a run's data section, and data of the promised shape; held-out splits."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sparse_models.config import ConfigError, field_infos
from sparse_models.data import (
    DataConfig,
    Dataset,
    available_sources,
    data_config,
    data_config_dict,
    get_source,
    load_dataset,
)

# Small settings per source so that loading takes a moment; every registered source needs one.
SMALL = {
    "natural": {"images": ["camera"], "n_patches": 64, "patch_size": 8, "n_test": 16},
    "gratings": {"n_patches": 64, "patch_size": 6, "n_test": 16},
    "digits": {"n_test": 200},
    "images": {"images": ["camera"], "n_crops": 32, "crop": 16, "n_test": 8},
}
NEEDS_SETTINGS = {"folder"}  # sources with no valid default (a folder must be named)
# Loaded in their own tests (tests/data/test_mnist.py: the default would try a download here).
LOADED_ELSEWHERE = {"mnist"}


def test_every_registered_source_is_covered_here():
    assert set(available_sources()) == set(SMALL) | NEEDS_SETTINGS | LOADED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(set(SMALL) | NEEDS_SETTINGS | LOADED_ELSEWHERE))
def test_a_source_is_registered_under_its_configs_name(name):
    source = get_source(name)
    assert source.name == name == source.Config.source
    assert source.description
    for info in field_infos(source.Config):
        assert info.label and info.label != info.name, f"{name}.{info.name} has no label"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_default_config_builds_and_round_trips(name):
    cfg = data_config({"source": name})
    assert type(cfg) is get_source(name).Config and cfg == get_source(name).Config()
    assert DataConfig(name) == cfg
    section = data_config_dict(cfg)
    assert section["source"] == name
    assert set(section) == {"source"} | {f.name for f in dataclasses.fields(cfg)}
    assert data_config(section) == cfg
    c, h, w = cfg.input_shape
    assert c >= 1 and h >= 1 and w >= 1 and cfg.n_samples >= 1


@pytest.mark.parametrize("name", sorted(SMALL))
def test_load_dataset_gives_the_promised_shape_and_split(name):
    cfg = DataConfig(name, **SMALL[name])
    assert data_config(data_config_dict(cfg)) == cfg
    ds = load_dataset(cfg)
    assert isinstance(ds, Dataset)
    assert ds.input_shape == cfg.input_shape
    c, h, w = cfg.input_shape
    assert ds.x.shape == (cfg.n_samples, c * h * w) and ds.x.dtype == torch.float32
    assert ds.has_test and ds.x_test.shape == (cfg.n_test, c * h * w)
    assert bool(torch.isfinite(ds.x).all()) and bool(torch.isfinite(ds.x_test).all())
    assert (ds.y is None) == (ds.y_test is None) == (not get_source(name).labelled)


def test_data_config_keeps_an_instance_and_defaults_to_natural():
    cfg = DataConfig("gratings", patch_size=8)
    assert data_config(cfg) is cfg
    assert data_config(None) == data_config({}) == DataConfig("natural")


def test_unknown_source_is_a_clear_config_error():
    with pytest.raises(ConfigError, match=r"unknown data source 'nope'; available: .*digits.*"
                                          r"gratings.*natural"):
        data_config({"source": "nope"})
    with pytest.raises(ConfigError, match="unknown data source 'nope'"):
        get_source("nope")
    with pytest.raises(ConfigError, match="source must be a source name"):
        data_config({"source": 3})


def test_a_source_refuses_the_settings_of_another():
    with pytest.raises(ConfigError, match="unknown key data.images for GratingsConfig"):
        data_config({"source": "gratings", "images": ["camera"]})
    with pytest.raises(ConfigError, match="unknown key data.patch_size for DigitsConfig"):
        data_config({"source": "digits", "patch_size": 8})


def test_ranges_are_enforced_with_the_label_named():
    with pytest.raises(ConfigError, match=r"Patch size \(px\) \(data\.patch_size\) must be at "
                                          r"least 4, got 2"):
        DataConfig("gratings", patch_size=2)
    with pytest.raises(ConfigError, match=r"Held-out patches \(data\.n_test\) must be at least 0"):
        DataConfig("natural", n_test=-1)


def test_split_off_test_takes_the_last_rows_with_their_labels():
    x = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 4)
    ds = Dataset(x=x, input_shape=(1, 2, 2), y=torch.arange(10), info={"a": 1})
    assert ds.split_off_test(0) is ds and not ds.has_test
    split = ds.split_off_test(3)
    assert split.x[:, 0].tolist() == list(range(7)) and split.y.tolist() == list(range(7))
    assert split.x_test[:, 0].tolist() == [7, 8, 9] and split.y_test.tolist() == [7, 8, 9]
    assert split.has_test and len(split) == 7 and split.info == {"a": 1, "n_test": 3}
    assert len(ds) == 10 and ds.x_test is None  # the original is left alone
