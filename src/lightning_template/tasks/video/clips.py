"""Clips of consecutive frames cut from videos laid end to end, served as whole batches.

The videos of a split share one frame axis (video ``v`` owns frames
``[video_starts[v], video_starts[v + 1])``), so the training shuffler's blocks are clip
spans and its groups are videos: a sampler key is the first frame of a clip. For
evaluation a key is the first frame of a *video*, and the batch holds ``eval_clips``
evenly spaced clips of each of its videos, so video-level predictions need no state
carried across batches and a video is never split between ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_template_core import SampleKey, per_sample_uniforms

FrameOrder = Literal["kept", "shuffled"]


class FrameSource(Protocol):
    """Where the frames come from: memory (synthetic) or video files (decoded on demand)."""

    video_starts: np.ndarray  # first frame of each video on the shared frame axis
    labels: np.ndarray  # class of each video
    num_frames: int

    def read(self, starts: np.ndarray, clip_len: int, stride: int) -> Tensor:
        """Clips beginning at frames ``starts``: ``(len(starts), clip_len, 3, H, W)`` uint8."""
        ...


class ClipBatch(NamedTuple):
    """Normalised clips ``(N, T, 3, H, W)``, their labels, and how many consecutive clips form a video.

    Training batches also count the clips of their global batch (``global_items``).
    """

    clips: Tensor
    labels: Tensor
    clips_per_video: int
    global_items: int = 0


class InMemoryFrames:
    """A :class:`FrameSource` over frames already in memory as one uint8 array."""

    def __init__(self, frames: np.ndarray, video_starts: np.ndarray, labels: np.ndarray) -> None:
        self.frames = torch.from_numpy(frames)
        self.video_starts, self.labels = video_starts, labels
        self.num_frames = len(frames)

    def read(self, starts: np.ndarray, clip_len: int, stride: int) -> Tensor:
        return self.frames[torch.from_numpy(starts[:, None] + np.arange(clip_len) * stride)]


class VideoClips(Dataset):
    """Clips of ``clip_len`` frames, every ``frame_stride``-th of a span of ``clip_len * frame_stride``.

    ``eval_clips=None`` serves training keys (clip starts); a number serves evaluation
    keys (video starts). ``frame_order="shuffled"`` permutes the frames inside each clip
    with a permutation keyed by ``(seed, epoch, first frame of the clip)``: the ablation
    showing what a model loses without the order.
    """

    def __init__(
        self,
        source: FrameSource,
        clip_len: int,
        frame_stride: int = 1,
        *,
        eval_clips: int | None = None,
        frame_order: FrameOrder = "kept",
        seed: int = 0,
    ) -> None:
        self.source, self.clip_len, self.stride = source, clip_len, frame_stride
        self.eval_clips, self.frame_order, self.seed = eval_clips, frame_order, seed
        self.lengths = np.diff(np.append(source.video_starts, source.num_frames))
        self.video_labels = torch.from_numpy(np.asarray(source.labels, dtype=np.int64))

    @property
    def span(self) -> int:
        return self.clip_len * self.stride

    def __len__(self) -> int:
        return self.source.num_frames

    def evaluated_videos(self) -> np.ndarray:
        """Start frames of the videos long enough for one clip (the evaluation keys)."""
        return self.source.video_starts[self.lengths >= self.span]

    def clip_starts(self, keys: Sequence[SampleKey]) -> np.ndarray:
        """First frame of every clip the keys stand for, in batch order."""
        firsts = np.fromiter((key.index for key in keys), dtype=np.int64, count=len(keys))
        if self.eval_clips is None:
            return firsts
        videos = np.searchsorted(self.source.video_starts, firsts)
        room = self.lengths[videos] - self.span
        spread = np.round(np.linspace(0, 1, self.eval_clips)[None, :] * room[:, None]).astype(np.int64)
        return (firsts[:, None] + spread).ravel()

    def __getitem__(self, key: SampleKey) -> ClipBatch:
        return self.__getitems__([key])

    def __getitems__(self, keys: Sequence[SampleKey]) -> ClipBatch:
        starts = self.clip_starts(keys)
        clips = self.source.read(starts, self.clip_len, self.stride)
        if self.frame_order == "shuffled":
            order = np.argsort(per_sample_uniforms(self.seed, keys[0].epoch, starts, self.clip_len), axis=1)
            clips = clips[torch.arange(len(starts))[:, None], torch.from_numpy(order)]
        labels = self.video_labels[np.searchsorted(self.source.video_starts, starts, side="right") - 1]
        return ClipBatch(clips.float().div_(255).sub_(0.5).div_(0.25), labels, self.eval_clips or 1)
