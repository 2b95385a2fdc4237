"""Property tests of the order-preserving batch shuffler and the evaluation sampler."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._batching.randomness import KeyedPermutation
from lightning_template_core._batching.sampler import EvalBatchSampler, OrderPreservingBatchSampler, cut_blocks
from lightning_template_core._errors import UserError


@st.composite
def datasets(draw):
    """Group lengths, a block size and a layout that fits at least one global batch."""
    block_size = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=12))
    tail = draw(st.sampled_from(["drop", "overlap"]))
    world = draw(st.sampled_from([1, 2, 3]))
    accumulate = draw(st.sampled_from([1, 2, 4]))
    micro = draw(st.integers(1, 3))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    blocks = cut_blocks(int(sum(lengths)), block_size, starts, tail)
    global_size = micro * accumulate * world
    if len(blocks) < global_size:
        lengths = [*lengths, global_size * block_size]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return {
        "num_items": int(sum(lengths)),
        "group_starts": starts,
        "block_size": block_size,
        "tail": tail,
        "layout": BatchLayout.resolve(global_size, micro, world),
        "seed": draw(st.integers(0, 2**32)),
    }


def make_samplers(spec: dict, shuffle: bool = True) -> list[OrderPreservingBatchSampler]:
    layout = spec["layout"]
    return [
        OrderPreservingBatchSampler(
            spec["num_items"],
            layout,
            rank,
            block_size=spec["block_size"],
            group_starts=spec["group_starts"],
            tail=spec["tail"],
            seed=spec["seed"],
            shuffle=shuffle,
        )
        for rank in range(layout.world_size)
    ]


def epoch_batches(sampler: OrderPreservingBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return [[key.index for key in batch] for batch in sampler]


@settings(max_examples=150, deadline=None)
@given(datasets())
def test_blocks_stay_inside_one_group_and_are_whole(spec):
    (sampler, *_) = make_samplers(spec)
    group_of = np.searchsorted(spec["group_starts"], np.arange(spec["num_items"]), side="right") - 1
    for start in sampler.block_starts:
        items = np.arange(start, start + spec["block_size"])
        assert items[-1] < spec["num_items"]
        assert len(set(group_of[items])) == 1, "a block crosses a group boundary"
    if spec["tail"] == "drop":
        assert len(sampler.block_starts) == sum(
            length // spec["block_size"] for length in np.diff(np.append(spec["group_starts"], spec["num_items"]))
        )


@settings(max_examples=150, deadline=None)
@given(datasets(), st.integers(0, 5))
def test_ranks_and_micro_steps_partition_the_global_batches(spec, epoch):
    samplers = make_samplers(spec)
    layout = spec["layout"]
    per_rank = [epoch_batches(s, epoch) for s in samplers]
    assert len({len(batches) for batches in per_rank}) == 1, "ranks yield different numbers of micro-batches"
    global_batches = samplers[0].epoch_order(epoch)
    k, m = layout.accumulate_grad_batches, layout.micro_batch_size
    for g, expected in enumerate(global_batches):
        pieces = [per_rank[r][g * k + j] for r in range(layout.world_size) for j in range(k)]
        assert all(len(piece) == m for piece in pieces)
        assert sorted(index for piece in pieces for index in piece) == sorted(expected.tolist())
    seen = [index for batches in per_rank for batch in batches for index in batch]
    assert len(seen) == len(set(seen)), "a block appears twice in one epoch"
    assert set(seen) <= set(samplers[0].block_starts.tolist())
    assert len(seen) == len(global_batches) * layout.global_batch_size


@settings(max_examples=100, deadline=None)
@given(datasets())
def test_order_is_fixed_by_seed_and_epoch(spec):
    first, second = make_samplers(spec)[0], make_samplers(spec)[0]
    assert epoch_batches(first, 3) == epoch_batches(second, 3)
    if len(first.block_starts) >= 8:
        orders = {tuple(first.epoch_order(epoch).ravel()) for epoch in range(4)}
        assert len(orders) > 1, "the order does not change across epochs"


@settings(max_examples=100, deadline=None)
@given(datasets(), st.data())
def test_resuming_at_any_position_gives_the_remaining_sequence(spec, data):
    sampler = make_samplers(spec)[-1]
    epoch = data.draw(st.integers(0, 3))
    full = epoch_batches(sampler, epoch)
    position = data.draw(st.integers(0, len(full)))
    sampler.set_position(epoch, position)
    assert [[key.index for key in batch] for batch in sampler] == full[position:]


def test_items_inside_a_block_keep_their_order_and_epoch():
    layout = BatchLayout.resolve(4, 2, 1)
    sampler = OrderPreservingBatchSampler(100, layout, 0, block_size=5, group_starts=[0, 37, 80], seed=1)
    sampler.set_epoch(7)
    keys = [key for batch in sampler for key in batch]
    assert {key.epoch for key in keys} == {7}
    # group lengths 37, 43, 20 -> 7 + 8 + 4 blocks of 5, 19 in all: 4 whole global batches of 4
    assert len(sampler.block_starts) == 19 and len(keys) == 16


def test_unshuffled_sampler_is_in_order():
    layout = BatchLayout.resolve(4, 2, 1)
    sampler = OrderPreservingBatchSampler(10, layout, 0, shuffle=False)
    assert [[key.index for key in batch] for batch in sampler] == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_overlap_tail_ends_at_the_group_end():
    assert cut_blocks(10, 4, [0], "overlap").tolist() == [0, 4, 6]
    assert cut_blocks(10, 4, [0], "drop").tolist() == [0, 4]
    assert cut_blocks(10, 4, [0, 3], "drop").tolist() == [3]  # the 3-item group is too short


def test_too_few_blocks_for_one_global_batch_is_a_user_error():
    with pytest.raises(UserError, match="global_batch_size=64 is larger than the 50"):
        OrderPreservingBatchSampler(50, BatchLayout.resolve(64, None, 1), 0)


def test_describe_counts_what_an_epoch_leaves_out():
    sampler = OrderPreservingBatchSampler(100, BatchLayout.resolve(32, None, 1), 0)
    assert "3 global batches of 32" in sampler.describe() and "4 block(s) (4 items)" in sampler.describe()


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_eval_sampler_counts_every_block_once(world):
    starts = np.arange(0, 103)
    seen = []
    for rank in range(world):
        sampler = EvalBatchSampler(starts, 8, rank, world)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        seen += [key.index for batch in batches for key in batch]
    assert sorted(seen) == starts.tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4099])
@pytest.mark.parametrize("table", [True, False])
def test_keyed_permutation_is_a_bijection_fixed_by_its_key(n, table, monkeypatch):
    monkeypatch.setattr(KeyedPermutation, "TABLE_MAX", 1 << 20 if table else 0)
    values = KeyedPermutation(n, (3, 1))(np.arange(n))
    assert sorted(values.tolist()) == list(range(n))
    if n % 2 == 0:  # any shape of positions
        assert np.array_equal(KeyedPermutation(n, (3, 1))(np.arange(n).reshape(2, -1)).ravel(), values)
    assert np.array_equal(KeyedPermutation(n, (3, 1))(np.arange(n)), values)
    if n >= 64:
        assert not np.array_equal(KeyedPermutation(n, (3, 2))(np.arange(n)), values)
        assert np.mean(values == np.arange(n)) < 0.1  # it really shuffles


def test_lazy_permutation_drives_the_sampler_like_the_table(monkeypatch):
    layout = BatchLayout.resolve(12, 2, 2)
    monkeypatch.setattr(KeyedPermutation, "TABLE_MAX", 0)
    samplers = [OrderPreservingBatchSampler(500, layout, rank, block_size=3, seed=9) for rank in range(2)]
    seen = sorted(i for s in samplers for batch in epoch_batches(s, 4) for i in batch)
    assert seen == sorted(samplers[0].epoch_order(4).ravel().tolist())
    assert len(set(seen)) == len(seen) == samplers[0].num_global_batches * 12
