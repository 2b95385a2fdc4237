"""A folder of video files in class subfolders (UCF101/HMDB51 layout), indexed once and decoded on demand.

Layout: ``root/<class>/<video>.<ext>``; the classes are the subfolder names, sorted.
Optional split files ``root/splits/train.txt``, ``val.txt``, ``test.txt`` list one
video per line as a path relative to ``root`` (``<class>/<video>.<ext>``); anything
after the path on a line (UCF101's class number) and lines starting with ``#`` are
ignored. Without ``val.txt`` the validation videos are drawn from the training list;
without ``test.txt`` the test split is the validation split. Without a ``splits``
folder every class is split from ``seed`` by ``val_fraction`` and ``test_fraction``.

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

from lightning_template.errors import UserError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
LAYOUT = (
    "root/<class>/<video>.<ext> (one subfolder per class, extensions " + ", ".join(VIDEO_EXTENSIONS) + "),"
    " optionally with root/splits/{train,val,test}.txt listing <class>/<video>.<ext> per line"
)


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


def find_videos(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted subfolders) and every video file with its class number."""
    if not root.is_dir():
        return [], []
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "splits" and not p.name.startswith("."))
    files = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((root / name).iterdir())
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()
    ]
    return classes, files


def read_split_file(path: Path) -> list[str]:
    """Relative video paths listed in a split file (first field of each line)."""
    lines = (line.split("#", 1)[0].split() for line in path.read_text().splitlines())
    return [fields[0].replace("\\", "/") for fields in lines if fields]


def assign_splits(
    root: Path, files: list[tuple[Path, int]], seed: int, val_fraction: float, test_fraction: float
) -> dict[str, list[tuple[Path, int]]]:
    """Split files into train/val/test from ``root/splits`` if it exists, else per class from ``seed``."""
    rng = np.random.default_rng(seed)
    split_dir = root / "splits"
    if split_dir.is_dir():
        by_name = {path.relative_to(root).as_posix(): (path, label) for path, label in files}
        listed = {}
        for split in ("train", "val", "test"):
            if (split_dir / f"{split}.txt").is_file():
                names = read_split_file(split_dir / f"{split}.txt")
                missing = [name for name in names if name not in by_name]
                if missing:
                    rank_zero_warn(
                        f"{len(missing)} video(s) in {split_dir / split}.txt are not in {root}: {missing[:3]}"
                    )
                listed[split] = [by_name[name] for name in names if name in by_name]
        if "train" not in listed:
            raise UserError(f"{split_dir} exists but has no train.txt: add it (see the layout: {LAYOUT}).")
        if "val" not in listed:
            listed["train"], listed["val"] = _carve(listed["train"], val_fraction, rng)
        listed.setdefault("test", listed["val"])
        return listed
    splits: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    for label in sorted({label for _, label in files}):
        members = [files[i] for i in rng.permutation(len(files)) if files[i][1] == label]
        num_test = round(len(members) * test_fraction)
        num_val = round(len(members) * val_fraction)
        splits["test"] += members[:num_test]
        splits["val"] += members[num_test : num_test + num_val]
        splits["train"] += members[num_test + num_val :]
    return {split: sorted(members) for split, members in splits.items()}


def _carve(files: list, fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    order = rng.permutation(len(files))
    cut = max(1, round(len(files) * fraction)) if len(files) > 1 else 0
    return [files[i] for i in sorted(order[cut:])], [files[i] for i in sorted(order[:cut])]


def index_folder(
    root: Path, frame_size: int, seed: int, val_fraction: float, test_fraction: float
) -> tuple[list[str], dict[str, VideoFolderFrames]]:
    """Class names and one frame source per split; unreadable files are reported and left out."""
    import_av()
    classes, files = find_videos(root)
    readable: dict[Path, VideoFile] = {}
    bad = []
    for path, label in files:
        try:
            readable[path] = probe(path, label)
        except Exception as err:  # PyAV raises many types for a broken file
            bad.append(path)
            rank_zero_warn(f"Video {path} is unreadable and left out ({type(err).__name__}: {err}).")
    if not readable:
        found = f"{len(files)} video file(s), none readable" if files else "no video files"
        raise UserError(
            f"data.root={root} holds {found}. Point data.root at a folder laid out as {LAYOUT}; or use"
            " experiment=video for the embedded synthetic videos."
        )
    splits = assign_splits(root, [(p, label) for p, label in files if p in readable], seed, val_fraction, test_fraction)
    for split in ("train", "val", "test"):
        if not splits[split]:
            raise UserError(
                f"The {split} split of data.root={root} has no readable video: add videos, list some in"
                f" {root}/splits/{split}.txt, or change data.val_fraction / data.test_fraction."
            )
    sources = {
        split: VideoFolderFrames([readable[p] for p, _ in members], frame_size) for split, members in splits.items()
    }
    counts = ", ".join(f"{split} {len(source.videos)}" for split, source in sources.items())
    rank_zero_info(
        f"Video folder {root}: {len(readable)} readable video(s) in {len(classes)} classes ({counts});"
        f" {len(bad)} unreadable file(s) left out"
    )
    return classes, sources
