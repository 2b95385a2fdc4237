"""Length-grouped global batches: sentences of about one length together, so a batch is almost all tokens.

The training sentences are sorted by length (ties in an order fixed by ``seed``) and
cut, in that order, into global batches: ``sentences`` at a time, or as many as fit a
padded budget of ``tokens`` (count x longest <= budget, as fairseq's ``max_tokens``,
which keeps memory flat whatever the lengths). The cut depends on the data and the
seed only, never on the devices or the accumulation: so every decomposition of a
global batch trains on the same global batches. Each epoch shuffles the *order* of the
global batches from ``(seed, epoch)``, not their content (as the core's sampler
shuffles blocks); every epoch has the same number of them, which a mid-epoch resume and
a learning-rate schedule rely on.

Each global batch is then split into ``accumulate x devices`` contiguous slots of
(nearly) equal sentence counts, slot ``rank * accumulate + step``; every rank runs the
same number of micro-batches per step, so DDP never waits for a rank with fewer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from lightning_template_core import BatchLayout, EpochPosition, KeyedPermutation, UserError


class SentenceRequest(NamedTuple):
    """What a sampler asks the dataset for: these sentences, and the size of the global batch they belong to."""

    indices: tuple[int, ...]
    global_sentences: int
    global_tokens: int  # tokens of the whole global batch, <eos> included


def length_order(lengths: np.ndarray, seed: int) -> np.ndarray:
    """Sentence indices sorted by length; sentences of one length in an order fixed by ``seed``."""
    ties = KeyedPermutation(len(lengths), (seed, 0x1E9))(np.arange(len(lengths)))
    return ties[np.argsort(lengths[ties], kind="stable")]


def cut_by_count(lengths: np.ndarray, sentences: int, seed: int) -> tuple[list[np.ndarray], int]:
    """Global batches of ``sentences`` each, and how many sentences are left out (fewer than one batch)."""
    if len(lengths) < sentences:
        raise UserError(
            f"data.global_batch_size={sentences} is larger than the {len(lengths)} training sentences: lower it or use"
            " more data."
        )
    left_out = len(lengths) % sentences
    # the sentences left out are drawn at random (by seed), not always the longest
    kept = np.sort(KeyedPermutation(len(lengths), (seed, 0x1EF))(np.arange(len(lengths) - left_out)))
    order = kept[length_order(lengths[kept], seed)]
    return list(order.reshape(-1, sentences)), left_out


def cut_by_tokens(lengths: np.ndarray, tokens: int, seed: int) -> tuple[list[np.ndarray], int]:
    """Global batches whose padded size (sentences x longest) stays within ``tokens``, and the sentences left out.

    A last batch under half the budget is left out (its few sentences would make a step
    of a very different size).
    """
    longest = int(lengths.max())
    if tokens < longest:
        raise UserError(
            f"data.global_batch_tokens={tokens} cannot hold the longest training sentence ({longest} tokens): raise"
            f" it to at least {longest} (a few times more, so that a global batch holds several sentences), or"
            " lower data.max_length."
        )
    order = length_order(lengths, seed)
    sorted_lengths = lengths[order]
    batches, first = [], 0
    while first < len(order):
        # the batch grows while (count x its longest, the last one) fits: lengths only grow along the order
        window = sorted_lengths[first : first + tokens // sorted_lengths[first] + 1]
        fits = np.arange(1, len(window) + 1) * window <= tokens
        size = int(np.argmin(fits)) if not fits.all() else len(fits)
        batches.append(order[first : first + size])
        first += size
    left_out = 0
    if len(batches) > 1 and len(batches[-1]) * int(lengths[batches[-1]].max()) * 2 < tokens:
        left_out = len(batches.pop())
    return batches, left_out


class LengthGroupedBatchSampler(EpochPosition):
    """This rank's micro-batches of length-grouped global batches; resumable at any global batch.

    Follows the core's :class:`~lightning_template_core.PositionedBatchSampler`
    protocol, so the core's resumable loader drives it and checkpoints its position.
    """

    def __init__(
        self,
        global_batches: list[np.ndarray],
        lengths: np.ndarray,
        layout: BatchLayout,
        rank: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        size_key: str = "data.global_batch_size",
    ) -> None:
        slots = layout.accumulate_grad_batches * layout.world_size
        smallest = min(len(batch) for batch in global_batches)
        if smallest < slots:
            raise UserError(
                f"A global batch of {smallest} sentence(s) cannot be split into the {slots} micro-batches of"
                f" {layout.describe()}: every device and accumulation step needs a sentence. Raise {size_key}"
                " (or lower data.max_length, so long sentences share a batch), or use fewer devices or"
                " accumulation steps."
            )
        self.global_batches = global_batches
        self.layout = layout
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.num_sentences = len(lengths)
        self.lengths = lengths
        self.sizes = [(len(batch), int(lengths[batch].sum())) for batch in global_batches]

    def __len__(self) -> int:
        """Micro-batches this rank yields in an epoch."""
        return len(self.global_batches) * self.layout.accumulate_grad_batches

    def fingerprint(self) -> dict[str, int]:
        return {
            "seed": self.seed,
            "num_items": self.num_sentences,
            "global_batch_size": self.layout.global_batch_size,
        }

    def batch_order(self, epoch: int) -> np.ndarray:
        """The global batches' numbers in the order ``epoch`` trains them."""
        positions = np.arange(len(self.global_batches))
        return KeyedPermutation(len(positions), (self.seed, epoch))(positions) if self.shuffle else positions

    def micro_batch(self, global_batch: int, slot: int) -> np.ndarray:
        """The sentences of slot ``slot`` (``rank * accumulate + step``) of a global batch."""
        slots = self.layout.accumulate_grad_batches * self.layout.world_size
        return np.array_split(self.global_batches[global_batch], slots)[slot]

    def __iter__(self) -> Iterator[SentenceRequest]:
        order = self.batch_order(self.epoch)
        accumulate = self.layout.accumulate_grad_batches
        for batch in range(self.start_batch, len(self)):
            number, step = divmod(batch, accumulate)
            global_batch = int(order[number])
            sentences = self.micro_batch(global_batch, self.rank * accumulate + step)
            yield SentenceRequest(tuple(sentences.tolist()), *self.sizes[global_batch])

    def describe(self) -> str:
        """What an epoch holds, and the padding its micro-batches carry, for the run log."""
        slots = self.layout.accumulate_grad_batches * self.layout.world_size
        padded = sum(
            len(part) * int(self.lengths[part].max()) - int(self.lengths[part].sum())
            for batch in self.global_batches
            for part in np.array_split(batch, slots)
        )
        real = sum(tokens for _, tokens in self.sizes)
        counts = [count for count, _ in self.sizes]
        return (
            f"{len(self.global_batches)} length-grouped global batches per epoch of {min(counts)}-{max(counts)}"
            f" sentences ({real} tokens in all); padding {padded / real:.2%} of the tokens"
        )
