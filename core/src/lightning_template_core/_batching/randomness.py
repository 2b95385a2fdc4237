"""Randomness keyed by (seed, epoch, index) instead of drawn from a process-wide generator.

Augmentations use :func:`per_sample_uniforms`, so a sample is augmented the same way
whichever rank, micro-step or dataloader worker loads it; the sampler shuffles with
:class:`KeyedPermutation`, so any position of an epoch's order is known without
shuffling the whole epoch first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash (SplitMix64 finaliser), applied element-wise."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def per_sample_uniforms(seed: int, epoch: int, indices: np.ndarray, draws: int) -> np.ndarray:
    """Uniform numbers in [0, 1), shape ``(len(indices), draws)``, fixed by (seed, epoch, index)."""
    key = splitmix64(splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)) ^ np.uint64(epoch))
    base = splitmix64(key ^ np.asarray(indices, dtype=np.uint64))
    streams = splitmix64(base[:, None] + np.arange(1, draws + 1, dtype=np.uint64)[None, :])
    return (streams >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class KeyedPermutation:
    """A pseudo-random bijection of ``range(n)`` fixed by ``key``, evaluated only where asked.

    Up to ``TABLE_MAX`` items it is an exact uniform shuffle held as a table. Above
    that, shuffling a whole epoch up front would cost seconds, so it is a four-round
    Feistel network over the smallest even number of bits covering ``n`` (a
    bijection of ``[0, 2**bits)``), with values at or beyond ``n`` encrypted again
    until they fall inside ("cycle walking", under four rounds on average): O(1) to
    set up, so an epoch of ten million blocks starts at once and a resumed epoch jumps
    straight to its position.
    """

    TABLE_MAX = 1 << 20
    ROUNDS = 4

    def __init__(self, n: int, key: Sequence[int]) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        self.n = n
        state = np.uint64(0x5EED)
        for part in key:
            state = splitmix64(state ^ np.uint64(part & 0xFFFFFFFFFFFFFFFF))
        self._table: np.ndarray | None = None
        if n <= self.TABLE_MAX:
            self._table = np.random.Generator(np.random.Philox(key=int(state))).permutation(n)
            return
        half_bits = ((n - 1).bit_length() + 1) // 2
        self._half = np.uint64(half_bits)
        self._mask = np.uint64((1 << half_bits) - 1)
        self._round_keys = [splitmix64(state + np.uint64(r)) for r in range(self.ROUNDS)]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self._half, x & self._mask
        for round_key in self._round_keys:
            left, right = right, left ^ (splitmix64(right ^ round_key) & self._mask)
        return (left << self._half) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """The values at ``positions`` (ints in ``range(n)``) of the permuted order."""
        if self._table is not None:
            return self._table[np.asarray(positions, dtype=np.int64)]
        positions = np.asarray(positions, dtype=np.uint64)
        out = self._encrypt(positions.ravel())
        outside = np.flatnonzero(out >= self.n)
        while outside.size:
            out[outside] = self._encrypt(out[outside])
            outside = outside[out[outside] >= self.n]
        return out.astype(np.int64).reshape(positions.shape)
