"""The resumable training loader: epochs, mid-epoch state, and refusing a mismatched checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from lightning_template.batching.datamodule import keep_batch
from lightning_template.batching.layout import BatchLayout
from lightning_template.batching.loader import ResumableLoader
from lightning_template.batching.sampler import OrderPreservingBatchSampler
from lightning_template.errors import UserError


class Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, keys):
        return torch.tensor([key.index for key in keys]), torch.tensor([key.epoch for key in keys])


def make_loader(global_size: int = 8, seed: int = 0, num_workers: int = 0) -> ResumableLoader:
    sampler = OrderPreservingBatchSampler(40, BatchLayout.resolve(global_size, 4, 1), 0, seed=seed)
    return ResumableLoader(Indices(40), sampler, collate_fn=keep_batch, num_workers=num_workers)


def indices(batches) -> list[list[int]]:
    return [batch[0].tolist() for batch in batches]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_each_full_iteration_is_the_next_epoch(num_workers):
    loader = make_loader(num_workers=num_workers)
    epochs = [[batch[1].unique().item() for batch in loader] for _ in range(3)]
    assert epochs == [[0] * 10, [1] * 10, [2] * 10]
    iter(loader)  # an iterator nothing was drawn from does not start an epoch
    assert next(iter(loader))[1][0].item() == 3


@pytest.mark.parametrize("num_workers", [0, 2])
def test_state_dict_mid_epoch_resumes_the_remaining_batches(num_workers):
    loader = make_loader(num_workers=num_workers)
    list(loader)  # epoch 0
    iterator = iter(loader)
    for _ in range(3):
        next(iterator)
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batches_done"] == 3
    rest_uninterrupted = indices(list(iterator))

    resumed = make_loader(num_workers=num_workers)
    resumed.load_state_dict(state)
    assert indices(resumed) == rest_uninterrupted
    assert next(iter(resumed))[1][0].item() == 2


def test_state_at_the_end_of_an_epoch_resumes_at_the_next():
    loader = make_loader()
    list(loader)
    state = loader.state_dict()
    assert state["batches_done"] == len(loader)
    resumed = make_loader()
    resumed.load_state_dict(state)
    assert next(iter(resumed))[1][0].item() == 1


def test_checkpoint_from_another_layout_is_refused_with_the_fix():
    state = make_loader(global_size=8).state_dict()
    with pytest.raises(UserError, match=r"global_batch_size was 8 and is now 4.*drop ckpt_path"):
        make_loader(global_size=4).load_state_dict(state)
    with pytest.raises(UserError, match="seed was 0 and is now 1"):
        make_loader(seed=1).load_state_dict(state)
