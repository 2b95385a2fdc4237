"""A learnable 10-class image set drawn in memory: shapes and textures on random colours.

Position, size, colours and noise vary per image, so the class is in the *shape*
alone: a linear model on pixels does poorly, a small CNN learns it in minutes on a
CPU. Every class looks the same mirrored left-right, so horizontal flips are safe.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = (
    "disc",
    "square",
    "triangle",
    "plus",
    "ring",
    "horizontal stripes",
    "vertical stripes",
    "checkerboard",
    "x",
    "diamond",
)
IMAGE_SIZE = 32
_CHUNK = 4096


def _masks(labels: np.ndarray, dx: np.ndarray, dy: np.ndarray, radius: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Foreground mask of each image's shape, shape ``(n, size, size)``."""
    r = radius[:, None, None]
    dist = np.hypot(dx, dy)
    box = np.maximum(np.abs(dx), np.abs(dy)) <= r
    bar = 0.32 * r
    stripe_y = np.floor((dy + 64) / period[:, None, None]) % 2 == 0
    stripe_x = np.floor((dx + 64) / period[:, None, None]) % 2 == 0
    shapes = [
        dist <= r,
        np.maximum(np.abs(dx), np.abs(dy)) <= 0.85 * r,
        (np.abs(dy) <= 0.9 * r) & (np.abs(dx) <= (dy + 0.9 * r) * 0.6),
        ((np.abs(dx) <= bar) & (np.abs(dy) <= r)) | ((np.abs(dy) <= bar) & (np.abs(dx) <= r)),
        (dist <= r) & (dist >= 0.55 * r),
        box & stripe_y,
        box & stripe_x,
        box & (stripe_x ^ stripe_y),
        (dist <= r) & ((np.abs(dx - dy) <= 1.4 * bar) | (np.abs(dx + dy) <= 1.4 * bar)),
        np.abs(dx) + np.abs(dy) <= r,
    ]
    return np.choose(labels[:, None, None], shapes)


def _draw(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    n = len(labels)
    grid = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    centre = rng.uniform(11, 21, size=(n, 2)).astype(np.float32)
    radius = rng.uniform(6, 11, size=n).astype(np.float32)
    period = rng.integers(2, 4, size=n).astype(np.float32)
    dy = grid[None, :, None] - centre[:, 0, None, None]
    dx = grid[None, None, :] - centre[:, 1, None, None]
    mask = _masks(labels, dx, dy, radius, period)[:, None]

    background = rng.uniform(0, 1, size=(n, 3, 1, 1))
    foreground = rng.uniform(0, 1, size=(n, 3, 1, 1))
    gap = foreground - background
    contrast = np.linalg.norm(gap, axis=1, keepdims=True)
    foreground = np.clip(background + gap * np.maximum(1.0, 0.5 / np.maximum(contrast, 1e-3)), 0, 1)
    shade = 1 + 0.15 * rng.uniform(-1, 1, size=(n, 1, 1, 1)) * (grid[None, None, :, None] - 16) / 16
    image = np.where(mask, foreground, background * shade)
    image = image + rng.normal(0, 0.05, size=image.shape)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_synthetic_images(num_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_images`` balanced, shuffled images ``(n, 3, 32, 32) uint8`` and labels ``(n,) int64``."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(CLASS_NAMES)).astype(np.int64)
    images = np.empty((num_images, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, num_images, _CHUNK):
        images[start : start + _CHUNK] = _draw(rng, labels[start : start + _CHUNK])
    return images, labels
