"""`batches`: shapes, epochs without repeats, reproducibility, and exact resumption."""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from sparse_models.data import DataError, Dataset, batches


def toy(n: int = 50, labels: bool = True) -> Dataset:
    """Row i of x is filled with i, so a batch tells which samples it holds."""
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 6)
    y = torch.arange(n) if labels else None
    return Dataset(x=x, input_shape=(1, 2, 3), y=y, name="toy")


def ids(batch: tuple[torch.Tensor, torch.Tensor | None]) -> list[int]:
    return batch[0][:, 0].long().tolist()


@pytest.mark.parametrize("labels", [True, False])
def test_shapes(labels: bool) -> None:
    x, y = next(batches(toy(labels=labels), 8))
    assert x.shape == (8, 6) and x.dtype == torch.float32
    if labels:
        assert y is not None and y.shape == (8,) and torch.equal(y, x[:, 0].long())
    else:
        assert y is None


def test_no_repeats_within_an_epoch() -> None:
    per_epoch = 50 // 8
    stream = batches(toy(), 8, seed=1)
    for _ in range(3):
        seen = [i for b in islice(stream, per_epoch) for i in ids(b)]
        assert len(seen) == len(set(seen)) == per_epoch * 8


def test_same_seed_same_order_other_seed_other_order() -> None:
    a = [ids(b) for b in islice(batches(toy(), 8, seed=5), 20)]
    b = [ids(b) for b in islice(batches(toy(), 8, seed=5), 20)]
    c = [ids(b) for b in islice(batches(toy(), 8, seed=6), 20)]
    assert a == b and a != c


@pytest.mark.parametrize("k", [0, 1, 5, 6, 7, 19])  # 6 batches per epoch: inside, at and past ends
def test_resuming_at_step_k_equals_skipping_k(k: int) -> None:
    full = [ids(b) for b in islice(batches(toy(), 8, seed=2), k + 10)]
    resumed = [ids(b) for b in islice(batches(toy(), 8, seed=2, start_step=k), 10)]
    assert resumed == full[k:]


def test_batch_larger_than_dataset_raises() -> None:
    with pytest.raises(DataError, match="larger than the dataset"):
        next(batches(toy(10), 11))


@pytest.mark.parametrize("bad", [0, -3])
def test_non_positive_batch_size_raises(bad: int) -> None:
    with pytest.raises(DataError, match="positive integer"):
        next(batches(toy(), bad))
