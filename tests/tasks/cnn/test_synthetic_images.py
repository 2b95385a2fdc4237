"""The embedded image set: deterministic, balanced, and too hard for a linear model."""

from __future__ import annotations

import numpy as np
import torch

from lightning_template.tasks.cnn.synthetic import CLASS_NAMES, make_synthetic_images


def test_same_seed_same_images_other_seed_other_images():
    a_images, a_labels = make_synthetic_images(300, seed=1)
    b_images, b_labels = make_synthetic_images(300, seed=1)
    c_images, _ = make_synthetic_images(300, seed=2)
    assert np.array_equal(a_images, b_images) and np.array_equal(a_labels, b_labels)
    assert not np.array_equal(a_images, c_images)
    assert a_images.shape == (300, 3, 32, 32) and a_images.dtype == np.uint8


def test_classes_are_balanced():
    _, labels = make_synthetic_images(1000, seed=0)
    assert np.bincount(labels, minlength=len(CLASS_NAMES)).tolist() == [100] * len(CLASS_NAMES)


def test_a_linear_model_on_pixels_does_poorly():
    """The class lives in the shape, not in colour or position: a linear classifier stays far below the CNN."""
    images, labels = make_synthetic_images(6000, seed=0)
    x = torch.from_numpy(images).float().flatten(1) / 255
    x = (x - x[:5000].mean(0)) / (x[:5000].std(0) + 1e-6)
    y = torch.from_numpy(labels)
    torch.manual_seed(0)
    linear = torch.nn.Linear(x.shape[1], 10)
    optimizer = torch.optim.Adam(linear.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(linear(x[:5000]), y[:5000]).backward()
        optimizer.step()
    accuracy = (linear(x[5000:]).argmax(1) == y[5000:]).float().mean().item()
    assert 0.1 < accuracy < 0.6, accuracy
