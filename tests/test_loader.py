"""The resumable training loader: epochs, mid-epoch state, and refusing a mismatched checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from lightning_template_core._batching.datamodule import keep_batch
from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._batching.loader import ResumableLoader
from lightning_template_core._batching.sampler import OrderPreservingBatchSampler
from lightning_template_core._errors import UserError


class Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, keys):
        return torch.tensor([key.index for key in keys]), torch.tensor([key.epoch for key in keys])


def make_loader(
    global_size: int = 8, seed: int = 0, num_workers: int = 0, micro: int = 4, world: int = 1, rank: int = 0
) -> ResumableLoader:
    sampler = OrderPreservingBatchSampler(40, BatchLayout.resolve(global_size, micro, world), rank, seed=seed)
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
    for _ in range(4):  # two global batches of 8 = 2 x (micro 4 x accumulate 2)
        next(iterator)
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["global_batches_done"] == 2 and state["micro_batches_past_window"] == 0
    rest_uninterrupted = indices(list(iterator))

    resumed = make_loader(num_workers=num_workers)
    resumed.load_state_dict(state)
    assert indices(resumed) == rest_uninterrupted
    assert next(iter(resumed))[1][0].item() == 2


def test_state_at_the_end_of_an_epoch_resumes_at_the_next():
    loader = make_loader()
    list(loader)
    state = loader.state_dict()
    assert state["global_batches_done"] * 2 == len(loader)
    resumed = make_loader()
    resumed.load_state_dict(state)
    assert next(iter(resumed))[1][0].item() == 1


def test_checkpoint_from_another_layout_is_refused_with_the_fix():
    state = make_loader(global_size=8).state_dict()
    with pytest.raises(UserError, match=r"global_batch_size was 8 and is now 4.*drop ckpt_path"):
        make_loader(global_size=4).load_state_dict(state)
    with pytest.raises(UserError, match="seed was 0 and is now 1"):
        make_loader(seed=1).load_state_dict(state)


def global_batches(loaders: list[ResumableLoader]) -> list[list[int]]:
    """The samples of each global batch, whatever the layout: every rank's micro-batches of one step, sorted."""
    per_rank = [indices(loader) for loader in loaders]
    accumulate = loaders[0].layout.accumulate_grad_batches
    steps = len(per_rank[0]) // accumulate
    return [
        sorted(i for rank in per_rank for batch in rank[step * accumulate : (step + 1) * accumulate] for i in batch)
        for step in range(steps)
    ]


@pytest.mark.parametrize(("before", "after"), [((4, 2), (2, 1)), ((2, 1), (4, 2)), ((8, 1), (2, 2))])
def test_a_position_resumes_on_another_layout_at_the_same_global_batch(before, after):
    """Stopped after 2 global batches on one (micro, devices) layout, resumed on another: same samples."""
    (micro_a, world_a), (micro_b, world_b) = before, after
    writers = [make_loader(micro=micro_a, world=world_a, rank=r) for r in range(world_a)]
    uninterrupted = global_batches([make_loader(micro=micro_a, world=world_a, rank=r) for r in range(world_a)])
    for loader in writers:
        iterator = iter(loader)
        for _ in range(2 * loader.layout.accumulate_grad_batches):
            next(iterator)
    state = writers[0].state_dict()
    assert all(loader.state_dict() == state for loader in writers)  # every rank is at the same global batch
    readers = [make_loader(micro=micro_b, world=world_b, rank=r) for r in range(world_b)]
    for loader in readers:
        loader.load_state_dict(state)
    assert global_batches(readers) == uninterrupted[2:]


def test_a_position_inside_an_accumulation_window_resumes_only_on_its_layout():
    loader = make_loader(micro=2)  # accumulate 4
    iterator = iter(loader)
    for _ in range(5):
        next(iterator)
    state = loader.state_dict()
    assert (state["global_batches_done"], state["micro_batches_past_window"]) == (1, 1)
    same = make_loader(micro=2)
    same.load_state_dict(state)
    assert indices(same) == indices(iterator)
    with pytest.raises(UserError, match="inside an accumulation window"):
        make_loader(micro=4).load_state_dict(state)
