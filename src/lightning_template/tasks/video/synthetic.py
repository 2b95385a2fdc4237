"""Synthetic videos whose class is in the *order* of their frames, not in any frame or in the set of frames.

A disc visits ``SLOTS`` = 8 evenly spaced places on a circle, stepping ``+1``, ``-1``,
``+3`` or ``-3`` slots per frame (slow or jumping, clockwise or counter-clockwise). As
8 is coprime with 1 and 3, any 8 consecutive frames show the disc once at every
slot: a single frame, or the shuffled frames of a clip, look the same for every class
(the start slot is random), and only the order says which class it is. Frame strides
that are odd keep this true; an even stride merges classes (+1 and -3 at stride 2).

A bright disc of random colour on a dark background; colours, circle radius, disc size,
rotation of the circle and noise vary per video.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CLASS_NAMES = ("clockwise", "counter-clockwise", "clockwise jumps", "counter-clockwise jumps")
STEPS = (1, -1, 3, -3)
SLOTS = 8
FRAME_SIZE = 32


class FrameArray(NamedTuple):
    """Videos laid end to end: ``frames (total, 3, H, W) uint8``, where each video starts, its label."""

    frames: np.ndarray
    video_starts: np.ndarray
    labels: np.ndarray


def _draw_video(rng: np.random.Generator, label: int, length: int) -> np.ndarray:
    grid = np.arange(FRAME_SIZE, dtype=np.float32) + 0.5
    slot = (rng.integers(SLOTS) + STEPS[label] * np.arange(length)) % SLOTS
    angle = 2 * np.pi * slot / SLOTS + rng.uniform(0, 2 * np.pi / SLOTS)
    radius, disc = rng.uniform(8, 11), rng.uniform(3.5, 5.0)
    centre = FRAME_SIZE / 2 + rng.uniform(-1.5, 1.5, size=2)
    cy, cx = centre[0] + radius * np.sin(angle), centre[1] + radius * np.cos(angle)
    mask = np.hypot(grid[None, :, None] - cy[:, None, None], grid[None, None, :] - cx[:, None, None]) <= disc
    background, foreground = rng.uniform(0, 0.35, size=(3, 1, 1)), rng.uniform(0.65, 1, size=(3, 1, 1))
    video = np.where(mask[:, None], foreground, background)
    video = video + rng.normal(0, 0.06, size=video.shape)
    return (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_synthetic_videos(num_videos: int, seed: int, length: tuple[int, int] = (24, 48)) -> FrameArray:
    """``num_videos`` class-balanced videos in shuffled order, each ``length[0]..length[1]`` frames."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_videos) % len(CLASS_NAMES)).astype(np.int64)
    lengths = rng.integers(length[0], length[1] + 1, size=num_videos)
    videos = [_draw_video(rng, int(label), int(n)) for label, n in zip(labels, lengths, strict=True)]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return FrameArray(np.concatenate(videos), starts, labels)
