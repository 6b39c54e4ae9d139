"""The command line: a tiny real training, analysis, listing, and one-line errors with exit 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparse_models.cli import main

TINY = ["--set", "train.steps=15", "--set", "data.n_patches=300", "--set", "data.patch_size=8",
        "--set", "model.group.map_shape=[6,6]", "--set", "model.group.size=3",
        "--set", "train.batch_size=64", "--quiet"]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSE_LAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_train_analyze_list_round_trip(runs, capsys):
    assert main(["train", "topographic", "--out", str(runs), "--name", "tiny", *TINY]) == 0
    run = runs / "tiny"
    assert (run / "weights.safetensors").exists() and (run / "config.json").exists()
    cfg = json.loads((run / "config.json").read_text())
    assert "train topographic" in json.dumps(cfg)  # the command that made it is recorded
    assert cfg["format_version"] == 2 and cfg["data"]["source"] == "natural"
    capsys.readouterr()
    assert main(["analyze", str(run), "--json", "--samples", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("live_fraction", "mean_selectivity", "neighbour_orientation_diff_deg",
                "explained_variance", "pinwheel_count", "column_spacing", "pinwheel_density"):
        assert key in result
    assert 0.0 <= result["live_fraction"] <= 1.0
    assert result["why_no_map"] is None  # a 6×6 map: the map measures apply
    assert result["why_no_test"] == "the data has no held-out split"
    assert main(["list", "--runs-dir", str(runs)]) == 0
    assert "tiny" in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["train", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["train", "topographic", "--set", "lamb=1"], "unknown key 'lamb'"),
    (["train", "topographic", "--set", "lam=abc"], "must be a number"),
    (["train", "topographic", "--set", "lam"], "expects key=value"),
    (["train", "topographic", "--set", "group.size=40"], "larger than the 16×16 map"),
    (["train", "topographic", "--set", "train.lr=1e30"],
     "Learning rate (train.lr) must be at most 10, got 1e+30"),
    (["train", "topographic", "--set", "data.source=nope"], "unknown data source 'nope'"),
    (["train", "topographic", "--set", "train.batch_size=512", "--set", "data.n_patches=300"],
     "the batch size (512) is larger than the number of training samples (300)"),
    (["train", "topographic", "--name", "../escape", *TINY], "run name"),
    (["analyze", "/nonexistent/run"], "/nonexistent/run"),
    (["bench", "pinwheels", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["train", "sheet", "--set", "model.receptive_field=20", "--set", "data.crop=16"],
     "the receptive field (20×20 px) is larger than the 16×16 image"),
    # checked against the data's own 36×36 crops, not the model's default image size
    (["train", "sheet", "--set", "model.stride=16"],
     "leaves 1×1 position(s) for 21×21 px windows on a 36×36 image; a sheet needs at least 2×2"),
    (["train", "sheet", "--set", "model.stride=30", "--set", "model.smooth_retinotopy=false"],
     "leaves 1×1 position(s) for 8×8 receptive fields on a 36×36 image"),
    (["train", "sheet", "--set", "model.stride=30", "--set", "model.receptive_field=12"],
     "looks through a 37×37 px window (the 12 px field and its shifts of up to 25 px), larger "
     "than the 36×36 image: lower the field or the stride"),
    (["train", "sheet", "--set", "data.crop=256", "--set", "model.receptive_field=2",
      "--set", "model.stride=1", "--set", "model.per_position=4"],
     "260100 units, above the limit of 65536"),
    (["train", "sheet", "--set", "data.folder=/nonexistent/photos"], "/nonexistent/photos"),
])
def test_bad_input_is_one_line_and_exit_2(argv, msg, runs, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and msg in err and "\n" not in err
    assert not (runs.parent / "escape").exists()


def test_a_sheet_is_checked_against_its_datas_image_size(capsys):
    """A stride that leaves one position on the model's default 32×32 image but four on 64×64
    crops is accepted for those crops (it was once refused against the default size)."""
    assert main(["train", "sheet", "--set", "model.stride=16", "--set", "data.crop=64",
                 "--show"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model_config"]["input_shape"] == [64, 64] and cfg["model_config"]["stride"] == 16


def test_show_prints_resolved_settings(capsys):
    assert main(["train", "topographic", "--set", "lam=0.7", "--set", "data.source=gratings",
                 "--set", "data.patch_size=8", "--show"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model_config"]["lam"] == 0.7 and cfg["model"] == "topographic"
    assert cfg["data"]["source"] == "gratings" and "images" not in cfg["data"]
    assert cfg["model_config"]["input_shape"] == [8, 8]  # fitted to the data


def test_module_entry_point_exit_code():
    r = subprocess.run([sys.executable, "-m", "sparse_models", "train", "nope"],
                       capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert r.returncode == 2 and "unknown model" in r.stderr


def test_a_failing_run_reports_its_error_and_exit_1(runs, capsys):
    # The largest learning rate allowed, with plain SGD: the loss overflows within a few
    # steps, and the run must end 'failed' with the reason shown.
    argv = ["train", "topographic", "--out", str(runs), "--name", "boom", *TINY,
            "--set", "train.lr=10", "--set", "train.optimizer=sgd"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "failed" in captured.out and captured.err.startswith("error: ")
    status = json.loads((runs / "boom" / "status.json").read_text())
    assert status["state"] == "failed" and "diverged" in status["error"]


def test_progress_in_a_log_is_one_line_per_tenth(runs, capsys):
    # Under pytest stderr is captured, not a terminal: progress comes as plain lines.
    argv = [a for a in TINY if a != "--quiet"]
    assert main(["train", "topographic", "--out", str(runs), "--name", "logged", *argv]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("step ")]
    assert lines[-1].startswith("step 15/15 (100%)") and "loss=" in lines[-1]
    assert 2 <= len(lines) <= 11  # at most one per tenth, plus step 0


@pytest.mark.parametrize("after_s", [0.3, 1.0])
def test_ctrl_c_while_the_command_is_still_loading_exits_130_without_a_traceback(
        tmp_path: Path, after_s: float) -> None:
    """Ctrl-C in the first second of `sweep`, while Python is still importing torch and the
    package (about 2 s here), gets a one-line message and exit 130, not Python's traceback."""
    import signal
    import time

    from sparse_models.training.runs import REPO_ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "sparse_models", "sweep", "topographic", "--grid",
         "model.lam=0.1,0.2", "--out", str(tmp_path / "runs")],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out + err)[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert "interrupted" in err
