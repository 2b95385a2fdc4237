"""Per-sample augmentation: fixed by (seed, epoch, index), whatever batch the sample lands in."""

from __future__ import annotations

import numpy as np
import torch

from lightning_template.tasks.cnn.dataset import ImageDataset
from lightning_template_core import SampleKey, per_sample_uniforms


def make_dataset(augment: bool = True, seed: int = 0) -> ImageDataset:
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageDataset(images, torch.arange(20), torch.zeros(3), torch.ones(3), augment=augment, seed=seed, pad=2)


def test_a_sample_is_augmented_the_same_in_any_batch():
    dataset = make_dataset()
    alone = dataset.__getitems__([SampleKey(7, 3)])[0][0]
    in_batch = dataset.__getitems__([SampleKey(i, 3) for i in (2, 7, 11)])[0][1]
    other_split = dataset.__getitems__([SampleKey(i, 3) for i in (7, 19)])[0][0]
    assert torch.equal(alone, in_batch) and torch.equal(alone, other_split)


def test_augmentation_changes_with_epoch_and_seed():
    keys = [SampleKey(i, 0) for i in range(20)]
    base = make_dataset().__getitems__(keys)[0]
    next_epoch = make_dataset().__getitems__([SampleKey(i, 1) for i in range(20)])[0]
    other_seed = make_dataset(seed=5).__getitems__(keys)[0]
    assert not torch.equal(base, next_epoch) and not torch.equal(base, other_seed)


def test_crop_and_flip_move_pixels_exactly():
    dataset = make_dataset()
    draws = per_sample_uniforms(0, 4, np.array([5]), 3)[0]
    top, left, flip = int(draws[0] * 5), int(draws[1] * 5), draws[2] < 0.5
    padded = torch.nn.functional.pad(dataset.images[5].float() / 255, (2, 2, 2, 2))
    expected = padded[:, top : top + 8, left : left + 8]
    if flip:
        expected = expected.flip(-1)
    assert torch.allclose(dataset.__getitems__([SampleKey(5, 4)])[0][0], expected)


def test_without_augmentation_images_are_only_normalised():
    dataset = make_dataset(augment=False)
    images, labels, _ = dataset.__getitems__([SampleKey(3, 9)])
    assert torch.equal(images[0], dataset.images[3].float() / 255) and labels.tolist() == [3]


def test_per_sample_uniforms_are_uniform_and_distinct():
    draws = per_sample_uniforms(1, 2, np.arange(20000), 2)
    assert draws.min() >= 0 and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.01 and abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.03
    assert len(np.unique(draws[:, 0])) == 20000
