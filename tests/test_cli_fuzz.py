"""Bad input never gives a traceback: crafted `--set` values and damaged run files get one clear
line and exit code 2, no run folder is made for a bad setting, and no file of a run changes."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sparse_models.cli import main

BAD_SETS = [
    "train.steps=1e400", "train.steps=NaN", "train.steps=-Infinity", "train.steps=0",
    "train.steps=" + "9" * 5000, "train.seed=" + "9" * 40, "train.seed=-1",
    "data.n_patches=1e12", "data.n_patches=NaN", "train.threads=100000", "train.lr=Infinity",
    "train.lr=-1", "lam=" + "[" * 100_000, "lam=" + "{\"a\":" * 5000 + "1" + "}" * 5000,
    "group.map_shape=[100000,100000]", "group.map_shape=[0,5]", "group.map_shape=[5]",
    "group.size=1e400", "group.size=true", "model.group=7", "data.source=nowhere",
    "data.patch_size=1000", "data.images=[]", "data.images=\"camera\"", "nonsense.key=1",
    "train.batch_size=1e9", "train.device=gpu9", "inference=magic", "eps=0",
    "data.source=folder", "train.eval_every=-3",
]


def _one_clean_line(err: str) -> None:
    lines = [line for line in err.strip().splitlines() if line]
    assert lines and lines[-1].startswith("error: "), err[-500:]
    assert "Traceback" not in err, err[-2000:]
    assert len(lines[-1]) < 2000, "the message should be a line, not a dump"


@pytest.mark.parametrize("setting", BAD_SETS, ids=[s[:40] for s in BAD_SETS])
def test_a_bad_setting_is_one_line_and_no_folder(tmp_path: Path, capsys, setting: str) -> None:
    out = tmp_path / "runs"
    code = main(["train", "topographic", "--out", str(out), "--set", setting, "--quiet"])
    _one_clean_line(capsys.readouterr().err)
    assert code == 2
    assert not out.exists() or not any(out.iterdir()), "a run folder was made for a bad setting"


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


class _Evil:
    def __reduce__(self):  # would run code if it were ever unpickled
        return (Path("/tmp/sfl-fuzz-executed").touch, ())


def _damages() -> dict[str, bytes]:
    rng = random.Random(0)
    good_json = json.dumps({"state": "completed"}).encode()
    return {
        "empty": b"",
        "truncated": good_json[: len(good_json) // 2],
        "random": bytes(rng.randrange(256) for _ in range(4096)),
        "nested": b"[" * 200_000,
        "huge-number": b"1" * 100_000,
        "nan": b"NaN",
        "pickled": pickle.dumps(_Evil()),
        "foreign-zip": b"PK\x03\x04" + bytes(200),
        "safetensors-header-lies": (10**12).to_bytes(8, "little") + b"{}",
    }


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("good")
    assert main(["train", "sparse_coding", "--out", str(runs), "--name", "good", "--quiet",
                 "--set", "data.source=gratings", "--set", "data.patch_size=8",
                 "--set", "data.n_patches=256", "--set", "model.n_units=16",
                 "--set", "train.steps=10", "--set", "train.batch_size=32",
                 "--set", "train.checkpoint_every=5"]) == 0
    assert main(["analyze", str(runs / "good")]) == 0  # its analysis is cached, as after use
    return runs / "good"


FILES = ["config.json", "status.json", "weights.safetensors", "checkpoint.safetensors",
         "snapshots.safetensors", "metrics.jsonl", "analysis.json"]


@pytest.mark.parametrize("damage", list(_damages()))
@pytest.mark.parametrize("file", FILES)
def test_a_damaged_run_file_never_gives_a_traceback_or_a_changed_file(
        good_run: Path, tmp_path: Path, capsys, file: str, damage: str) -> None:
    run = tmp_path / "damaged"
    shutil.copytree(good_run, run)
    (run / file).write_bytes(_damages()[damage])
    before = _hashes(run)
    for argv in (["analyze", str(run)], ["list", "--runs-dir", str(tmp_path)],
                 ["train", "sparse_coding", "--resume", str(run), "--quiet"]):
        code = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv, err[-2000:])
        assert code in (0, 2), (argv, code, err[-500:])
        if code == 2:
            _one_clean_line(err)
        if argv[0] != "train" or code == 2:
            assert _hashes(run) == before, f"{argv[0]} changed the run's files"
        else:  # a resume that went ahead: only because the damaged file was not needed (the
            # weights are rewritten from the checkpoint it resumed, which was checked in full)
            assert file in ("analysis.json", "metrics.jsonl", "snapshots.safetensors",
                            "status.json", "weights.safetensors"), f"resume accepted a damaged {file}"
            before = _hashes(run)
    assert not Path("/tmp/sfl-fuzz-executed").exists(), "a pickle was executed"


def test_nan_weights_cost_only_the_view_that_needs_them(good_run: Path, tmp_path: Path,
                                                         capsys) -> None:
    run = tmp_path / "nan"
    shutil.copytree(good_run, run)
    save_file({"D": torch.full((16, 64), float("nan"))}, str(run / "weights.safetensors"),
              metadata={"format": "sparse-feature-lab/run", "kind": "weights", "step": "10"})
    assert main(["analyze", str(run)]) == 2
    assert "NaN" in capsys.readouterr().err
    assert main(["list", "--runs-dir", str(tmp_path)]) == 0
