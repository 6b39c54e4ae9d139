"""What a retrain starts from: a parent run's rate travels with its warm-up and decay."""

from __future__ import annotations

from app_ui.testing import cli_train, private_runs
from sparse_models.models.sparse_coding import SparseCoding


def test_a_retrain_keeps_the_parents_rate_with_its_schedule(tmp_path):
    from app_ui.runs import RunRef, find_run, run_stamp
    from app_ui.train_settings import base_sections, default_sections

    settings = [f"{k}={v}" for k, v in SparseCoding.tiny.items()
                if k not in ("train.lr", "train.steps")]
    with private_runs(tmp_path):
        cli_train(tmp_path, "sparse_coding", "parent",
                  settings + ["train.lr=0.02", "train.lr_warmup=3", "train.lr_decay=cosine",
                              "train.steps=6"])
        info = find_run("parent")
        train = base_sections("sparse_coding", RunRef(str(info.path), run_stamp(info.path),
                                                       info))["train"]
        defaults = default_sections("sparse_coding")["train"]
    assert (train["lr"], train["lr_warmup"], train["lr_decay"]) == (0.02, 3, "cosine")
    assert train["steps"] == defaults["steps"] != 6  # its length is the page's default
