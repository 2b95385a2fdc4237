"""Batch samplers that decide, once, which samples form each global batch.

Training uses :class:`OrderPreservingBatchSampler`: it cuts the data into blocks of
consecutive items (one item; or a run of frames that never crosses a recording),
shuffles the order of the blocks from ``(seed, epoch)``, groups them into global
batches and gives each (rank, accumulation step) a fixed, disjoint slice. Evaluation
uses :class:`EvalBatchSampler`: every block exactly once over all ranks, no padding.

Both yield lists of :class:`SampleKey`, so a dataset knows the epoch of each sample
and can seed its augmentation from ``(seed, epoch, index)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal, NamedTuple

import numpy as np

from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._batching.loader import EpochPosition
from lightning_template_core._batching.randomness import KeyedPermutation
from lightning_template_core._errors import UserError

TailPolicy = Literal["drop", "overlap"]


class SampleKey(NamedTuple):
    """One sample as a dataset receives it: the first item of its block, and the epoch."""

    index: int
    epoch: int


def cut_blocks(
    num_items: int,
    block_size: int,
    group_starts: Sequence[int] | np.ndarray | None = None,
    tail: TailPolicy = "drop",
) -> np.ndarray:
    """Start indices of the blocks of ``block_size`` consecutive items, group by group.

    ``group_starts`` lists where each group (a recording, a document) begins; items of a
    group are contiguous and no block crosses into the next group. A group's short
    tail (``length % block_size`` items) is left out with ``tail="drop"``; with
    ``tail="overlap"`` one more block ends exactly at the group's end, overlapping the
    previous one. Groups shorter than one block give no block. Cost: O(blocks).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if tail not in ("drop", "overlap"):
        raise ValueError(f"tail must be 'drop' or 'overlap', got {tail!r}")
    starts = np.asarray([0] if group_starts is None else group_starts, dtype=np.int64)
    if starts.size == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= max(num_items, 1):
        raise ValueError("group_starts must begin at 0 and increase strictly, inside the items")
    lengths = np.diff(np.append(starts, num_items))
    full = lengths // block_size
    offsets = np.arange(int(full.sum()), dtype=np.int64) - np.repeat(np.cumsum(full) - full, full)
    blocks = np.repeat(starts, full) + offsets * block_size
    if tail == "overlap":
        has_tail = (lengths % block_size != 0) & (lengths >= block_size)
        tails = starts[has_tail] + lengths[has_tail] - block_size
        blocks = np.sort(np.concatenate([blocks, tails]))
    return blocks


class OrderPreservingBatchSampler(EpochPosition):
    """Shuffles blocks between batches, keeps items in order inside each block.

    Every rank derives the same epoch order from ``(seed, epoch)`` (a
    :class:`KeyedPermutation`, evaluated batch by batch) and takes its own slice:
    of each global batch of ``layout.global_batch_size`` blocks, rank ``r``
    gets positions ``[r*k*m, (r+1)*k*m)``, split into ``k`` micro-batches of ``m``
    blocks. An epoch holds only whole global batches (the rest is dropped: see
    :meth:`describe`), so every rank yields the same number of micro-batches and every
    accumulation window is complete.

    The epoch and the position within it are set by :meth:`set_position` (the
    :class:`~lightning_template_core._batching.loader.ResumableLoader` does this; Lightning
    never calls ``set_epoch`` on a batch sampler).
    """

    def __init__(
        self,
        num_items: int,
        layout: BatchLayout,
        rank: int,
        *,
        block_size: int = 1,
        group_starts: Sequence[int] | np.ndarray | None = None,
        tail: TailPolicy = "drop",
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if not 0 <= rank < layout.world_size:
            raise ValueError(f"rank {rank} is outside world_size {layout.world_size}")
        self.num_items = num_items
        self.layout = layout
        self.rank = rank
        self.block_size = block_size
        self.seed = seed
        self.shuffle = shuffle
        self.block_starts = cut_blocks(num_items, block_size, group_starts, tail)
        self.num_global_batches = len(self.block_starts) // layout.global_batch_size
        if self.num_global_batches == 0:
            raise UserError(
                f"data.global_batch_size={layout.global_batch_size} is larger than the {len(self.block_starts)}"
                f" training blocks of {block_size} item(s) this dataset holds: lower data.global_batch_size or"
                " use more data."
            )

    def __len__(self) -> int:
        """Micro-batches this rank yields in a full epoch."""
        return self.num_global_batches * self.layout.accumulate_grad_batches

    def set_epoch(self, epoch: int) -> None:
        self.set_position(epoch, 0)

    def fingerprint(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "num_items": self.num_items,
            "block_size": self.block_size,
            "global_batch_size": self.layout.global_batch_size,
        }

    def _order(self, epoch: int) -> Callable[[np.ndarray], np.ndarray]:
        """Maps positions of the epoch's order to block numbers (the order is never built whole)."""
        if not self.shuffle:
            return lambda positions: positions
        return KeyedPermutation(len(self.block_starts), (self.seed, epoch))

    def _positions(self, batch: np.ndarray | int) -> np.ndarray:
        """Positions in the epoch order of this rank's micro-batch(es) ``batch``, shape ``(..., micro)``."""
        lay = self.layout
        global_batch, step = np.divmod(np.asarray(batch), lay.accumulate_grad_batches)
        first = (
            global_batch * lay.global_batch_size
            + (self.rank * lay.accumulate_grad_batches + step) * lay.micro_batch_size
        )
        return first[..., None] + np.arange(lay.micro_batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The global batches of ``epoch``: block starts, shape ``(global batches, global_batch_size)``."""
        used = self.num_global_batches * self.layout.global_batch_size
        return self.block_starts[self._order(epoch)(np.arange(used))].reshape(self.num_global_batches, -1)

    def rank_micro_batches(self, epoch: int) -> np.ndarray:
        """This rank's micro-batches of ``epoch`` in order, shape ``(len(self), micro_batch_size)``."""
        return self.block_starts[self._order(epoch)(self._positions(np.arange(len(self))))]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        epoch, start = self.epoch, self.start_batch
        order = self._order(epoch)
        for batch in range(start, len(self)):
            blocks = self.block_starts[order(self._positions(batch))]
            yield [SampleKey(index, epoch) for index in blocks.tolist()]

    def describe(self) -> str:
        """What an epoch holds and what it leaves out, for the run log."""
        used_blocks = self.num_global_batches * self.layout.global_batch_size
        dropped_blocks = len(self.block_starts) - used_blocks
        return (
            f"{self.num_global_batches} global batches of {self.layout.global_batch_size} blocks x"
            f" {self.block_size} item(s) per epoch; {dropped_blocks} block(s) ({dropped_blocks * self.block_size}"
            f" items) left out of each epoch to keep every global batch whole"
            + (" (a different remainder every epoch)" if self.shuffle else "")
        )


class EvalBatchSampler:
    """Every evaluation block exactly once across ranks, in order, without padding.

    Rank ``r`` takes the ``r``-th contiguous shard of ``block_starts``; shards differ
    by at most one block, so ranks may run different numbers of batches (metrics are
    summed across ranks at epoch end, so no sample is counted twice).
    """

    def __init__(self, block_starts: Sequence[int] | np.ndarray, batch_size: int, rank: int, world_size: int) -> None:
        shards = np.array_split(np.asarray(block_starts, dtype=np.int64), world_size)
        self.blocks = shards[rank]
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.blocks) // self.batch_size)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        blocks = self.blocks.tolist()
        for first in range(0, len(blocks), self.batch_size):
            yield [SampleKey(index, 0) for index in blocks[first : first + self.batch_size]]
