"""Length-grouped global batches: what they hold, how they split, and how little they pad."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lightning_template.tasks.sentences.data import SyntheticSentenceDataModule
from lightning_template.tasks.sentences.grouping import LengthGroupedBatchSampler, cut_by_count, cut_by_tokens
from lightning_template_core import BatchLayout, UserError
from lightning_template_core.testing.runs import check_overrides

LAYOUTS = [(1, 1), (2, 1), (1, 2), (2, 2), (4, 2)]  # (accumulate, devices)


@pytest.fixture(scope="module")
def lengths() -> np.ndarray:
    data = SyntheticSentenceDataModule(global_batch_size=32, num_train=6000, num_val=10, num_test=10)
    data.setup()
    return data.corpus.splits["train"].lengths


def samplers(batches, lengths, size, accumulate, world, **kwargs):
    layout = BatchLayout(size, size // (accumulate * world), accumulate, world)
    return [LengthGroupedBatchSampler(batches, lengths, layout, rank, **kwargs) for rank in range(world)]


def padding(micro_batches, lengths) -> float:
    padded = sum(len(b) * lengths[list(b)].max() - lengths[list(b)].sum() for b in micro_batches)
    return padded / sum(lengths[list(b)].sum() for b in micro_batches)


def test_a_token_budget_bounds_every_padded_global_batch_and_uses_every_sentence_once(lengths):
    batches, left_out = cut_by_tokens(lengths, 1024, seed=0)
    sizes = [len(b) * lengths[b].max() for b in batches]
    assert max(sizes) <= 1024 and np.mean(sizes) > 0.9 * 1024  # full, and never over
    used = np.concatenate(batches)
    assert len(np.unique(used)) == len(used) == len(lengths) - left_out
    assert len({len(b) for b in batches}) > 5  # short sentences come many to a batch, long ones few


def test_a_sentence_count_cuts_equal_batches_and_leaves_out_a_random_remainder(lengths):
    batches, left_out = cut_by_count(lengths, 64, seed=0)
    assert left_out == len(lengths) % 64 and all(len(b) == 64 for b in batches)
    other_seed, _ = cut_by_count(lengths, 64, seed=1)
    missing = set(range(len(lengths))) - set(np.concatenate(batches).tolist())
    assert len(missing) == left_out and max(lengths[list(missing)]) < lengths.max()  # not the longest ones
    assert any(not np.array_equal(a, b) for a, b in zip(batches, other_seed, strict=True))


@pytest.mark.parametrize("by_tokens", [False, True])
def test_every_layout_splits_the_same_global_batches_and_ranks_run_equal_micro_batch_counts(lengths, by_tokens):
    size = 2048 if by_tokens else 64
    batches, _ = (cut_by_tokens if by_tokens else cut_by_count)(lengths, size, seed=0)
    reference = None
    for accumulate, world in LAYOUTS:
        ranks = samplers(batches, lengths, size, accumulate, world, seed=3)
        for sampler in ranks:
            sampler.set_position(epoch=2)
        per_rank = [list(sampler) for sampler in ranks]
        assert len({len(micro) for micro in per_rank}) == 1  # no rank waits in DDP
        steps = []
        for step in range(len(per_rank[0]) // accumulate):
            window = [per_rank[r][step * accumulate + j] for r in range(world) for j in range(accumulate)]
            assert all(w.indices for w in window)  # every slot has sentences
            assert len({(w.global_sentences, w.global_tokens) for w in window}) == 1
            steps.append(sorted(i for w in window for i in w.indices))
            assert window[0].global_tokens == lengths[steps[-1]].sum()
        if reference is None:
            reference = steps
        assert steps == reference, f"accumulate {accumulate} x {world} devices trains other global batches"


def test_the_micro_batches_of_a_step_hold_different_numbers_of_tokens(lengths):
    batches, _ = cut_by_tokens(lengths, 1024, seed=0)
    (sampler,) = samplers(batches, lengths, 1024, 4, 1)
    micro = list(sampler)
    tokens_per_step = [{int(lengths[list(m.indices)].sum()) for m in micro[s : s + 4]} for s in range(0, len(micro), 4)]
    # equal only where a global batch is all of one length and its count divides by 4
    assert np.mean([len(tokens) > 1 for tokens in tokens_per_step]) > 0.5


def test_each_epoch_shuffles_the_order_of_global_batches_not_their_content(lengths):
    batches, _ = cut_by_tokens(lengths, 1024, seed=0)
    (sampler,) = samplers(batches, lengths, 1024, 1, 1, seed=0)
    epochs = []
    for epoch in range(2):
        sampler.set_position(epoch)
        epochs.append([m.indices for m in sampler])
    assert epochs[0] != epochs[1] and sorted(epochs[0]) == sorted(epochs[1])


def test_a_position_mid_epoch_continues_with_the_same_micro_batches(lengths):
    batches, _ = cut_by_count(lengths, 64, seed=0)
    (sampler,) = samplers(batches, lengths, 64, 2, 1, seed=5)
    sampler.set_position(3)
    whole = list(sampler)
    sampler.set_position(3, start_batch=17)
    assert list(sampler) == whole[17:]


def test_a_layout_that_cannot_give_every_slot_a_sentence_is_refused_with_the_settings(lengths):
    batches, _ = cut_by_tokens(lengths, 300, seed=0)  # the longest sentences come 2 or 3 to a batch
    with pytest.raises(UserError, match=r"cannot be split into the 8 micro-batches.*data.global_batch_tokens"):
        samplers(batches, lengths, 320, 4, 2, size_key="data.global_batch_tokens")


def test_a_budget_below_the_longest_sentence_is_refused(lengths):
    with pytest.raises(UserError, match=rf"data.global_batch_tokens=50 cannot hold .*\({lengths.max()} tokens\)"):
        cut_by_tokens(lengths, 50, seed=0)


def test_length_grouping_pads_under_5_percent_where_random_batches_pad_several_times_more(lengths):
    rng = np.random.default_rng(0)
    for size, cut in ((32, cut_by_count), (1024, cut_by_tokens)):
        batches, _ = cut(lengths, size, seed=0)
        grouped = padding(batches, lengths)
        random = padding(np.array_split(rng.permutation(len(lengths)), len(batches)), lengths)
        print(f"{cut.__name__}({size}): padding grouped {grouped:.2%}, random {random:.2%}")
        assert grouped < 0.05 and random > 10 * grouped


@pytest.mark.parametrize("value", ["abc", "1.5", "[1,2]"])
def test_a_token_budget_that_is_not_an_integer_is_refused_before_anything_is_built(value):
    """Its shipped default is null, so the check reads the type the DataModule declares (``int | None``)."""
    overrides = ["experiment=sentences", "data.global_batch_size=null", f"data.global_batch_tokens={value}"]
    refused = rf"data\.global_batch_tokens={re.escape(value)} has the wrong type.*an integer"
    with pytest.raises(UserError, match=refused):
        check_overrides("fit", overrides)
    check_overrides("fit", [*overrides[:2], "data.global_batch_tokens=2048"])
