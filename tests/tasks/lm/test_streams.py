"""The stream batcher: batchify/get_batch semantics, split by streams across steps and ranks, resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_template.tasks.lm.streams import EvalStreamSampler, StreamBatchSampler, TokenStreams
from lightning_template_core import BatchLayout, ResumableLoader, UserError, keep_batch


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    """pytorch/examples word_language_model, verbatim in substance: streams as columns."""
    nbatch = data.size(0) // bsz
    return data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len]


def reference_windows(data: torch.Tensor, streams: int, bptt: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    source = batchify(data, streams)
    return [get_batch(source, i, bptt) for i in range(0, source.size(0) - 1, bptt)]


def rank_batches(data: torch.Tensor, layout: BatchLayout, rank: int, bptt: int, **kwargs) -> list:
    dataset = TokenStreams(data, layout.global_batch_size)
    sampler = StreamBatchSampler(dataset.stream_length, layout, rank, bptt, **kwargs)
    return list(ResumableLoader(dataset, sampler, collate_fn=keep_batch))


@pytest.mark.parametrize(("micro", "world"), [(12, 1), (4, 1), (6, 2), (2, 2), (1, 3)])
def test_windows_match_batchify_and_get_batch(micro, world):
    data, streams, bptt = torch.arange(1003), 12, 7  # 83 tokens per stream: the last window is short
    layout = BatchLayout.resolve(streams, micro, world)
    k = layout.accumulate_grad_batches
    per_rank = [rank_batches(data, layout, rank, bptt) for rank in range(world)]
    reference = reference_windows(data, streams, bptt)
    assert all(len(batches) == len(reference) * k for batches in per_rank)  # every rank: same count
    for window, (inputs, targets) in enumerate(reference):
        # the micro-batches of a window, in (rank, step) order, put back together = the global batch
        parts = [per_rank[rank][window * k + step] for rank in range(world) for step in range(k)]
        assert all(part.window == window for part in parts)
        assert [part.slot for part in parts] == list(range(k)) * world
        assert torch.equal(torch.cat([part.inputs for part in parts]), inputs.t())
        assert torch.equal(torch.cat([part.targets for part in parts]), targets.t())


def test_a_slot_reads_the_same_streams_in_every_window():
    data, layout = torch.arange(4000), BatchLayout.resolve(8, 2, 2)
    batches = rank_batches(data, layout, rank=1, bptt=5)
    source = batchify(data, 8).t()
    for batch in batches:  # rank 1, step j holds streams 4 + 2j and 5 + 2j, continuing where they left off
        first = 4 + 2 * batch.slot
        assert torch.equal(batch.inputs[:, 0], source[first : first + 2, batch.window * 5])


def test_resume_mid_epoch_continues_the_same_batches():
    data, layout = torch.arange(2000), BatchLayout.resolve(10, 5, 1)
    dataset = TokenStreams(data, 10)
    loader = ResumableLoader(dataset, StreamBatchSampler(200, layout, 0, 9, seed=3, variable_bptt=True))
    loader.collate_fn = keep_batch
    list(loader)
    iterator = iter(loader)  # epoch 1
    for _ in range(7):
        next(iterator)
    state = loader.state_dict()
    rest = [batch.inputs for batch in iterator]
    resumed = ResumableLoader(
        dataset, StreamBatchSampler(200, layout, 0, 9, seed=3, variable_bptt=True), collate_fn=keep_batch
    )
    resumed.load_state_dict(state)
    assert all(torch.equal(a, b.inputs) for a, b in zip(rest, resumed, strict=True))
    other = ResumableLoader(dataset, StreamBatchSampler(200, layout, 0, 9, seed=3), collate_fn=keep_batch)
    with pytest.raises(UserError, match="variable_bptt"):
        other.load_state_dict(state)


def test_variable_bptt_tiles_each_stream_with_epoch_dependent_edges():
    layout = BatchLayout.resolve(4, 2, 1)
    samplers = [StreamBatchSampler(500, layout, 0, 20, seed=1, variable_bptt=True) for _ in range(2)]
    fixed = StreamBatchSampler(500, layout, 0, 20)
    epochs = []
    for epoch in range(3):
        starts, lengths = samplers[0].window_bounds(epoch)
        assert np.array_equal(starts, samplers[1].window_bounds(epoch)[0])  # a pure function of (seed, epoch)
        assert starts[0] == 0 and np.all(lengths >= 20 - 2 * 5) and np.all(lengths[:-1] <= 20 + 2 * 5)
        assert starts[-1] + lengths[-1] == 499  # the windows cover every target exactly once
        assert len(starts) == fixed.num_windows
        epochs.append(starts)
    assert not np.array_equal(epochs[0], epochs[1])
    # every micro-step of a window has the same length
    for window in range(fixed.num_windows):
        batches = [b for b in samplers[0] if b.window == window]
        assert len({b.length for b in batches}) == 1 and len(batches) == 2


def test_evaluation_reads_every_stream_once_across_ranks():
    streams, length, bptt = 5, 40, 6
    seen = []
    for rank in range(3):
        sampler = EvalStreamSampler(streams, length, bptt, rank, 3)
        requests = list(sampler)
        assert len(requests) == len(sampler)
        seen += [s for r in requests if r.window == 0 for s in range(r.first, r.first + r.count)]
        assert sum(r.length for r in requests) == (length - 1) * bool(requests)  # every target once
    assert sorted(seen) == list(range(streams))
    assert len(EvalStreamSampler(2, length, bptt, 2, 3)) == 0  # more ranks than streams: an idle rank


def test_too_many_streams_for_the_corpus_is_a_user_error():
    with pytest.raises(UserError, match=r"data\.global_batch_size"):
        TokenStreams(torch.arange(30), 20)
