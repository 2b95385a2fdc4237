"""A folder of video files in class subfolders (UCF101/HMDB51 layout), indexed once and decoded on demand.

Layout and splits: ``root/<class>/<video>.<ext>``, as ``files.class_folders`` reads them.

Decoding uses PyAV (the ``video`` extra), imported only when a folder is read. A clip
seeks to the keyframe before its first frame and decodes only its span. A file that
cannot be read when indexed is reported and left out; one that fails later gives a
black clip and a warning, never a crash in the middle of an epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_template_core import ClassFolders, Folds, UserError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
VIDEOS = ClassFolders("video", VIDEO_EXTENSIONS)


def import_av():
    """PyAV, or a clear error saying how to install it."""
    try:
        import av
    except ImportError as err:
        raise UserError(
            "Reading video files (experiment=video_folder) needs PyAV, which is not installed: install the"
            " project's `video` extra (pip install av), or use experiment=video for the embedded videos."
        ) from err
    return av


@dataclass(frozen=True)
class VideoFile:
    """One readable video: where it is, its class, and what seeking in it needs."""

    path: Path
    label: int
    frames: int
    rate: Fraction  # frames per second
    time_base: Fraction
    start_pts: int


def probe(path: Path, label: int) -> VideoFile:
    """Open ``path``, count its frames (the container's count, else by decoding) and decode one frame."""
    av = import_av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = next(container.decode(stream))  # raises on a file with no decodable frame
        frames = stream.frames
        if frames <= 0:
            container.seek(0, stream=stream)
            frames = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        start = stream.start_time if stream.start_time is not None else (first.pts or 0)
        return VideoFile(path, label, int(frames), Fraction(rate), Fraction(stream.time_base), int(start))


def decode_frames(video: VideoFile, indices: np.ndarray) -> list[np.ndarray]:
    """RGB frames ``indices`` (increasing) of ``video``: seek to the keyframe before the first, decode the span."""
    av = import_av()
    wanted, out = set(indices.tolist()), []
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        first = int(indices[0])
        if first > 0:
            target = video.start_pts + int(first / video.rate / video.time_base)
            container.seek(target, stream=stream, backward=True, any_frame=False)
        for counter, frame in enumerate(container.decode(stream)):
            if frame.pts is None:
                if first > 0:  # no timestamps: positions are only known counting from the start
                    return decode_frames_from_start(video, indices)
                index = counter
            else:
                index = round(float((frame.pts - video.start_pts) * video.time_base * video.rate))
            if index in wanted:
                out.append(frame.to_ndarray(format="rgb24"))
            if index >= indices[-1]:
                break
    return out


def decode_frames_from_start(video: VideoFile, indices: np.ndarray) -> list[np.ndarray]:
    av = import_av()
    wanted, out = set(indices.tolist()), []
    with av.open(str(video.path)) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if index in wanted:
                out.append(frame.to_ndarray(format="rgb24"))
            if index >= indices[-1]:
                break
    return out


def resize(frames: list[np.ndarray], size: int) -> Tensor:
    """``(T, 3, size, size)`` uint8, squashed (not cropped) with antialiased bilinear interpolation."""
    clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()
    clip = F.interpolate(clip, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return clip.round_().clamp_(0, 255).to(torch.uint8)


class VideoFolderFrames:
    """A :class:`~lightning_template.tasks.video.clips.FrameSource` over indexed video files."""

    def __init__(self, videos: Sequence[VideoFile], frame_size: int) -> None:
        self.videos = list(videos)
        self.frame_size = frame_size
        counts = np.array([video.frames for video in self.videos], dtype=np.int64)
        self.video_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.labels = np.array([video.label for video in self.videos], dtype=np.int64)
        self.num_frames = int(counts.sum())
        self._warned: set[Path] = set()

    def read(self, starts: np.ndarray, clip_len: int, stride: int) -> Tensor:
        return torch.stack([self._clip(int(start), clip_len, stride) for start in starts])

    def _clip(self, start: int, clip_len: int, stride: int) -> Tensor:
        number = int(np.searchsorted(self.video_starts, start, side="right")) - 1
        video = self.videos[number]
        indices = start - self.video_starts[number] + np.arange(clip_len) * stride
        try:
            frames = decode_frames(video, indices)
        except Exception as err:  # PyAV raises many types; one bad file must not end the epoch
            self._warn(video, f"could not be decoded ({type(err).__name__}: {err}); a black clip stands in")
            frames = []
        if len(frames) < clip_len:
            if frames:
                self._warn(video, f"gave {len(frames)} of the {clip_len} frames asked; the last one is repeated")
            frames = frames + [frames[-1] if frames else None] * (clip_len - len(frames))
        if frames[0] is None:
            return torch.zeros(clip_len, 3, self.frame_size, self.frame_size, dtype=torch.uint8)
        return resize(frames, self.frame_size)

    def _warn(self, video: VideoFile, problem: str) -> None:
        if video.path not in self._warned:
            self._warned.add(video.path)
            warnings.warn(f"Video {video.path} {problem}.", stacklevel=2)


def index_folder(
    root: Path, frame_size: int, seed: int, val_fraction: float, test_fraction: float, folds: Folds | None = None
) -> tuple[list[str], dict[str, VideoFolderFrames]]:
    """Class names and one frame source per split; unreadable files are reported and left out."""
    import_av()
    classes, files = VIDEOS.find(root)
    readable: dict[Path, VideoFile] = {}
    bad = []
    for path, label in files:
        try:
            readable[path] = probe(path, label)
        except Exception as err:  # PyAV raises many types for a broken file
            bad.append(path)
            rank_zero_warn(f"Video {path} is unreadable and left out ({type(err).__name__}: {err}).")
    if not readable:
        raise UserError(
            f"data.root={root} holds {len(files)} video file(s), none readable. Point data.root at a folder laid out"
            f" as {VIDEOS.layout}; or use experiment=video for the embedded synthetic videos."
        )
    splits = VIDEOS.split(root, files, seed, val_fraction, test_fraction, left_out=bad, folds=folds)
    VIDEOS.check_not_empty(root, splits)
    sources = {
        split: VideoFolderFrames([readable[p] for p, _ in members], frame_size) for split, members in splits.items()
    }
    counts = ", ".join(f"{split} {len(source.videos)}" for split, source in sources.items())
    rank_zero_info(
        f"Video folder {root}: {len(readable)} readable video(s) in {len(classes)} classes ({counts});"
        f" {len(bad)} unreadable file(s) left out"
    )
    return classes, sources
