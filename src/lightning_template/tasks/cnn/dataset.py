"""Images held as uint8 (in memory, memory-mapped, or on the accelerator), served as batches with per-sample
augmentation.

A batch is cut, cropped and flipped as uint8 wherever the images are, and becomes float
(scaled to [0, 1], normalised per channel) by :func:`normalise`: in the dataset, or, for
the training loaders, after the batch reached the device, so a quarter of the bytes
travels. Every step is elementwise or a gather, so the float32 batches are the same bit
for bit whichever way they are made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from lightning_template_core import SampleKey, per_sample_uniforms


class ImageBatch(NamedTuple):
    """Images ``(N, C, H, W)`` (normalised float, or uint8 still to be normalised) and their labels; training
    batches also count their global batch."""

    images: Tensor
    labels: Tensor
    global_items: int = 0


def normalise(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images as the network reads them: float32 in [0, 1], then per channel ``(x - mean) / std``."""
    return (images.float().div_(255) - mean) / std


def to_device(values: Tensor, device: torch.device) -> Tensor:
    """A host tensor on ``device``; to a GPU through pinned memory, without waiting for the device."""
    if device.type == "cpu":
        return values
    return values.pin_memory().to(device, non_blocking=True)


class ImageDataset(Dataset):
    """The images at ``rows`` of ``images`` (all of them by default), served as whole batches.

    ``images`` ``(N, C, H, W)`` uint8 and ``labels`` ``(N,)`` are arrays or tensors that
    several splits share (a memory-mapped cache is never copied: a batch reads its rows).
    Whole batches (``__getitems__``) let crop and flip run once per batch, not per image.

    Augmentation (random crop after ``pad`` zero pixels, horizontal flip) draws from
    :func:`per_sample_uniforms` keyed by ``(seed, epoch, index)``: the same image gets
    the same crop in the same epoch on any rank, micro-step or worker. ``normalised=False``
    serves uint8 batches, for :func:`normalise` after the transfer; ``images`` may be a
    tensor on the accelerator (:meth:`ImageDataModule.place`): batches are then cut there.
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
        normalised: bool = True,
    ) -> None:
        self.images, self.labels = images, labels
        self.rows = np.arange(len(labels), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        self.mean, self.std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
        self.augment, self.seed, self.pad, self.normalised = augment, seed, pad, normalised

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
        if isinstance(self.images, Tensor):  # placed (on the accelerator, or in memory with on_device on the CPU)
            images = self.images[to_device(torch.from_numpy(rows), self.images.device)]
        else:
            images = torch.as_tensor(np.asarray(self.images[rows]))
        if self.augment:
            images = self._crop_and_flip(images, keys[0].epoch, indices)
        labels = torch.as_tensor(self.labels[rows])
        if not self.normalised:
            return ImageBatch(images, labels)
        return ImageBatch(normalise(images, self.mean, self.std), labels)

    def _crop_and_flip(self, images: Tensor, epoch: int, indices: np.ndarray) -> Tensor:
        """Each image cropped and flipped by its draws, as a gather (uint8 or float, on the images' device)."""
        batch, channels, height, width = images.shape
        device = images.device
        draws = per_sample_uniforms(self.seed, epoch, indices, 3)
        top = to_device(torch.from_numpy((draws[:, 0] * (2 * self.pad + 1)).astype(np.int64)), device)
        left = to_device(torch.from_numpy((draws[:, 1] * (2 * self.pad + 1)).astype(np.int64)), device)
        flip = to_device(torch.from_numpy(draws[:, 2] < 0.5), device)
        rows = top[:, None] + torch.arange(height, device=device)
        cols = left[:, None] + torch.arange(width, device=device)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        padded = F.pad(images, (self.pad,) * 4)
        return padded[
            torch.arange(batch, device=device)[:, None, None, None],
            torch.arange(channels, device=device)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
