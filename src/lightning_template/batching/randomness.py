"""Per-sample random numbers keyed by (seed, epoch, sample index).

Augmentations draw from these instead of a process-wide generator, so a sample is
augmented the same way whichever rank, micro-step or dataloader worker loads it.
"""

from __future__ import annotations

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash (SplitMix64 finaliser), applied element-wise."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def per_sample_uniforms(seed: int, epoch: int, indices: np.ndarray, draws: int) -> np.ndarray:
    """Uniform numbers in [0, 1), shape ``(len(indices), draws)``, fixed by (seed, epoch, index)."""
    key = _splitmix64(_splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)) ^ np.uint64(epoch))
    base = _splitmix64(key ^ np.asarray(indices, dtype=np.uint64))
    streams = _splitmix64(base[:, None] + np.arange(1, draws + 1, dtype=np.uint64)[None, :])
    return (streams >> np.uint64(11)).astype(np.float64) / float(1 << 53)
