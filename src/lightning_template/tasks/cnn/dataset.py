"""Images held as uint8 (in memory or memory-mapped), served as normalised float batches with per-sample
augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from lightning_template.batching.randomness import per_sample_uniforms
from lightning_template.batching.sampler import SampleKey


class ImageBatch(NamedTuple):
    """Normalised images ``(N, C, H, W)`` and their labels; training batches also count their global batch."""

    images: Tensor
    labels: Tensor
    global_items: int = 0


class ImageDataset(Dataset):
    """The images at ``rows`` of ``images`` (all of them by default), served as whole batches.

    ``images`` ``(N, C, H, W)`` uint8 and ``labels`` ``(N,)`` are arrays or tensors that
    several splits share (a memory-mapped cache is never copied: a batch reads its rows).
    Whole batches (``__getitems__``) let crop and flip run once per batch, not per image.

    Augmentation (random crop after ``pad`` zero pixels, horizontal flip) draws from
    :func:`per_sample_uniforms` keyed by ``(seed, epoch, index)``: the same image gets
    the same crop in the same epoch on any rank, micro-step or worker.
    """

    def __init__(
        self,
        images: Tensor | np.ndarray,
        labels: Tensor | np.ndarray,
        mean: Tensor,
        std: Tensor,
        *,
        rows: np.ndarray | None = None,
        augment: bool = False,
        seed: int = 0,
        pad: int = 4,
    ) -> None:
        self.images, self.labels = images, labels
        self.rows = np.arange(len(labels), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        self.mean, self.std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
        self.augment, self.seed, self.pad = augment, seed, pad

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def split_labels(self) -> Tensor:
        """The labels of this split's images, in order."""
        return torch.as_tensor(self.labels[self.rows])

    def __getitem__(self, key: SampleKey) -> tuple[Tensor, Tensor]:
        images, labels, _ = self.__getitems__([key])
        return images[0], labels[0]

    def __getitems__(self, keys: Sequence[SampleKey]) -> ImageBatch:
        indices = np.fromiter((key.index for key in keys), dtype=np.int64, count=len(keys))
        rows = self.rows[indices]
        images = torch.as_tensor(np.asarray(self.images[rows])).float().div_(255)
        if self.augment:
            images = self._crop_and_flip(images, keys[0].epoch, indices)
        return ImageBatch((images - self.mean) / self.std, torch.as_tensor(self.labels[rows]))

    def _crop_and_flip(self, images: Tensor, epoch: int, indices: np.ndarray) -> Tensor:
        batch, channels, height, width = images.shape
        draws = per_sample_uniforms(self.seed, epoch, indices, 3)
        top = torch.from_numpy((draws[:, 0] * (2 * self.pad + 1)).astype(np.int64))
        left = torch.from_numpy((draws[:, 1] * (2 * self.pad + 1)).astype(np.int64))
        flip = torch.from_numpy(draws[:, 2] < 0.5)
        rows = top[:, None] + torch.arange(height)
        cols = left[:, None] + torch.arange(width)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        padded = F.pad(images, (self.pad,) * 4)
        return padded[
            torch.arange(batch)[:, None, None, None],
            torch.arange(channels)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
