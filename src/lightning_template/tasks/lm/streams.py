"""Token streams for truncated backpropagation through time: the global batch is S streams x one window.

The corpus is cut into ``S`` contiguous, equal slices ("streams", the columns of
pytorch/examples' ``batchify``) and read window by window, in order, never shuffled, so
a hidden state carried from one window to the next sees the text that really came
before. Accumulation steps and ranks split the *streams* of each window: rank ``r``,
step ``j`` always reads streams ``[(r*k + j)*m, (r*k + j + 1)*m)``, so its carried
hidden state always belongs to the same text, whatever the decomposition.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_template_core import BatchLayout, EpochPosition, UserError, per_sample_uniforms


class StreamWindow(NamedTuple):
    """What a sampler asks the dataset for: streams ``[first, first+count)``, inputs ``[start, start+length)``."""

    first: int
    count: int
    start: int
    length: int
    window: int  # the window's number in its epoch: 0 starts from a fresh hidden state
    slot: int  # the accumulation step this micro-batch fills on its rank


class TokenWindow(NamedTuple):
    """One micro-batch: ``inputs`` and next-token ``targets``, both ``(streams, length)``.

    ``global_items`` counts the targets of the whole global batch (all streams of the window).
    """

    inputs: Tensor
    targets: Tensor
    window: int
    slot: int
    global_items: int


def window_starts(stream_length: int, bptt: int) -> np.ndarray:
    """First input position of each window, as ``range(0, stream_length - 1, bptt)`` in ``get_batch``."""
    return np.arange(0, stream_length - 1, bptt, dtype=np.int64)


def jittered_starts(stream_length: int, bptt: int, seed: int, epoch: int) -> np.ndarray:
    """Window starts moved by up to ``bptt // 4`` tokens, fixed by ``(seed, epoch, window)``.

    Like AWD-LSTM's variable BPTT, the cut points change every epoch, so no token always
    sits at a window edge; unlike it, the number of windows stays that of fixed ``bptt``,
    so every epoch has the same length (Lightning and a mid-epoch resume rely on it).
    """
    starts = window_starts(stream_length, bptt)
    reach = bptt // 4
    if reach == 0 or len(starts) < 2:
        return starts
    draws = per_sample_uniforms(seed, epoch, np.arange(1, len(starts)), 1)[:, 0]
    shift = np.floor(draws * (2 * reach + 1)).astype(np.int64) - reach
    moved = starts.copy()
    moved[1:] = np.minimum(starts[1:] + shift, stream_length - 2)
    return moved


class TokenStreams(Dataset):
    """A token sequence laid out as ``num_streams`` rows of equal length (the tail is dropped).

    Its items are windows of streams (:class:`StreamWindow` requests), so it has no
    ``len()``: how many streams a batch may hold is a layout choice, not a count of
    items. (Lightning's batch-size finder would otherwise stop growing the batch at the
    number of streams it was built with.)
    """

    def __init__(self, tokens: np.ndarray | Tensor, num_streams: int) -> None:
        stream_length = len(tokens) // num_streams
        if stream_length < 2:
            raise UserError(
                f"The split of {len(tokens)} tokens cannot be cut into {num_streams} streams of at least 2 tokens:"
                " lower data.global_batch_size (training streams) or data.eval_batch_size (evaluation streams),"
                " or use more text."
            )
        # a view of the ids (a memory-mapped cache stays mapped); a batch copies its window as int64
        self.streams = np.asarray(tokens)[: num_streams * stream_length].reshape(num_streams, stream_length)

    @property
    def stream_length(self) -> int:
        return self.streams.shape[1]

    @property
    def num_streams(self) -> int:
        return self.streams.shape[0]

    def __getitems__(self, request: StreamWindow) -> TokenWindow:
        rows = self.streams[request.first : request.first + request.count]
        inputs = torch.from_numpy(rows[:, request.start : request.start + request.length].astype(np.int64))
        targets = torch.from_numpy(rows[:, request.start + 1 : request.start + 1 + request.length].astype(np.int64))
        return TokenWindow(inputs, targets, request.window, request.slot, self.num_streams * request.length)

    __getitem__ = __getitems__


class StreamBatchSampler(EpochPosition):
    """The training order: for each window, for each accumulation step, this rank's streams.

    Satisfies :class:`~lightning_template_core.PositionedBatchSampler`, so a
    :class:`~lightning_template_core.ResumableLoader` restarts it mid-epoch.
    Every rank yields ``windows x accumulate_grad_batches`` micro-batches per epoch, and
    Lightning's accumulation window is one time window across all micro-steps.
    """

    def __init__(
        self,
        stream_length: int,
        layout: BatchLayout,
        rank: int,
        bptt: int,
        *,
        seed: int = 0,
        variable_bptt: bool = False,
    ) -> None:
        if not 0 <= rank < layout.world_size:
            raise ValueError(f"rank {rank} is outside world_size {layout.world_size}")
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        self.stream_length = stream_length
        self.layout = layout
        self.rank = rank
        self.bptt = bptt
        self.seed = seed
        self.variable_bptt = variable_bptt
        self.num_windows = len(window_starts(stream_length, bptt))

    def __len__(self) -> int:
        return self.num_windows * self.layout.accumulate_grad_batches

    def describe(self) -> str:
        """What an epoch holds, for the run log."""
        windows = "windows of about" if self.variable_bptt else "windows of"
        return (
            f"{self.layout.global_batch_size} streams of {self.stream_length} tokens per epoch, read in"
            f" {self.num_windows} {windows} {self.bptt} tokens (one optimizer step each)"
        )

    def fingerprint(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "stream_length": self.stream_length,
            "bptt": self.bptt,
            "variable_bptt": int(self.variable_bptt),
            "global_batch_size": self.layout.global_batch_size,
        }

    def window_bounds(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and length of every window of ``epoch`` (the same for all streams, ranks and steps)."""
        if self.variable_bptt:
            starts = jittered_starts(self.stream_length, self.bptt, self.seed, epoch)
        else:
            starts = window_starts(self.stream_length, self.bptt)
        return starts, np.diff(np.append(starts, self.stream_length - 1))

    def __iter__(self) -> Iterator[StreamWindow]:
        lay = self.layout
        starts, lengths = self.window_bounds(self.epoch)
        for batch in range(self.start_batch, len(self)):
            window, step = divmod(batch, lay.accumulate_grad_batches)
            first = (self.rank * lay.accumulate_grad_batches + step) * lay.micro_batch_size
            yield StreamWindow(first, lay.micro_batch_size, int(starts[window]), int(lengths[window]), window, step)


class EvalStreamSampler:
    """Evaluation: rank ``r`` reads its contiguous share of the streams, all windows, unpadded.

    The streams are laid out independently of the world size, and no stream is read by
    two ranks, so every token is counted once; ranks holding no stream run no batch.
    """

    def __init__(self, num_streams: int, stream_length: int, bptt: int, rank: int, world_size: int) -> None:
        shard = np.array_split(np.arange(num_streams), world_size)[rank]
        self.first, self.count = (int(shard[0]), len(shard)) if len(shard) else (0, 0)
        self.starts = window_starts(stream_length, bptt)
        self.lengths = np.diff(np.append(self.starts, stream_length - 1))

    def __len__(self) -> int:
        return len(self.starts) if self.count else 0

    def __iter__(self) -> Iterator[StreamWindow]:
        if not self.count:
            return
        for window, (start, length) in enumerate(zip(self.starts.tolist(), self.lengths.tolist(), strict=True)):
            yield StreamWindow(self.first, self.count, start, length, window, 0)
