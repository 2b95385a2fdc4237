"""DataModules for video classification: the embedded order-dependent videos and a folder of video files.

Training clips come from the shared order-preserving shuffler: a block is one clip
span (``clip_len * frame_stride`` frames), a group is one video, so clips never cross
videos, their order changes every epoch and the frames inside a clip stay in order.
Evaluation covers every video with ``eval_clips`` evenly spaced clips, sharded by
video across ranks, so video-level accuracy counts each video once.
"""

from __future__ import annotations

from abc import abstractmethod

from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from lightning_template.tasks.video import folder as video_folder
from lightning_template.tasks.video.clips import FrameOrder, FrameSource, InMemoryFrames, VideoClips
from lightning_template.tasks.video.synthetic import CLASS_NAMES, FRAME_SIZE, make_synthetic_videos
from lightning_template_core import (
    DataDescription,
    FileDataModule,
    Folds,
    GlobalBatchDataModule,
    ResumableLoader,
    UserError,
)

SPLITS = ("train", "val", "test")


class VideoDataModule(GlobalBatchDataModule):
    """Clips for training, whole videos for evaluation; subclasses say where the frames come from.

    Batch sizes count clips (``data.eval_batch_size`` counts videos of ``eval_clips``
    clips each). ``tail`` is the shuffler's policy for a video's last frames that do
    not fill a clip span: ``drop`` them, or ``overlap`` one more clip ending at the
    video's end.
    """

    def __init__(
        self,
        *,
        clip_len: int = 8,
        frame_stride: int = 1,
        frame_order: FrameOrder = "kept",
        tail: str = "drop",
        eval_clips: int = 3,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("clip_len", clip_len), ("frame_stride", frame_stride), ("eval_clips", eval_clips)):
            if not isinstance(value, int) or value < 1:
                raise UserError(f"data.{name}={value!r} must be a positive integer.")
        if frame_order not in ("kept", "shuffled"):
            raise UserError(
                f"data.frame_order={frame_order!r} is not one of: kept (frames in temporal order), shuffled"
                " (frames permuted inside each clip, an ablation)."
            )
        if tail not in ("drop", "overlap"):
            raise UserError(
                f"data.tail={tail!r} is not one of: drop (a video's last frames that do not fill a clip are left"
                " out), overlap (one more clip ends at the video's end)."
            )
        self.clip_len, self.frame_stride, self.frame_order = clip_len, frame_stride, frame_order
        self.tail, self.eval_clips = tail, eval_clips
        self.datasets: dict[str, VideoClips] = {}

    @abstractmethod
    def load_sources(self) -> dict[str, FrameSource]:
        """The frames of each split (``train``, ``val``, ``test``)."""

    @abstractmethod
    def class_names(self) -> tuple[str, ...]:
        """The name of each class, by label."""

    @abstractmethod
    def frame_shape(self) -> tuple[int, int, int]:
        """Channels, height and width of a frame."""

    def describe(self) -> DataDescription:
        return DataDescription(item_shape=(self.clip_len, *self.frame_shape()), classes=self.class_names())

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        sources = self.load_sources()
        options = {"frame_order": self.frame_order, "seed": self.seed}
        self.datasets = {
            split: VideoClips(
                source,
                self.clip_len,
                self.frame_stride,
                eval_clips=None if split == "train" else self.eval_clips,
                **options,
            )
            for split, source in sources.items()
        }
        for split, dataset in self.datasets.items():
            if split != "train" and len(dataset.evaluated_videos()) == 0:
                raise UserError(
                    f"No {split} video has the {dataset.span} frames one clip spans (data.clip_len={self.clip_len}"
                    f" x data.frame_stride={self.frame_stride}): lower them, or use longer videos."
                )
        counts = ", ".join(f"{split} {len(d.source.video_starts)}" for split, d in self.datasets.items())
        rank_zero_info(f"Videos: {counts}; clips of {self.clip_len} frames, stride {self.frame_stride}")

    def train_dataloader(self) -> ResumableLoader:
        train = self.datasets["train"]
        return self.train_loader(train, block_size=train.span, group_starts=train.source.video_starts, tail=self.tail)

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader(self.datasets["val"], self.datasets["val"].evaluated_videos())

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader(self.datasets["test"], self.datasets["test"].evaluated_videos())


class SyntheticVideoDataModule(VideoDataModule):
    """The embedded default: videos whose class is the order of their frames (see ``synthetic``)."""

    def __init__(
        self,
        num_train: int = 800,
        num_val: int = 100,
        num_test: int = 100,
        video_length: tuple[int, int] = (24, 48),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if len(video_length) != 2 or not 1 <= video_length[0] <= video_length[1]:
            raise UserError(f"data.video_length={list(video_length)} must be [shortest, longest] frames, 1 <= both.")
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.video_length = tuple(video_length)

    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def frame_shape(self) -> tuple[int, int, int]:
        return (3, FRAME_SIZE, FRAME_SIZE)

    def load_sources(self) -> dict[str, FrameSource]:
        # one seed per split, so changing num_train leaves the val and test videos as they were
        return {
            split: InMemoryFrames(*make_synthetic_videos(count, self.seed * 3 + i, self.video_length))
            for i, (split, count) in enumerate(self.sizes.items())
        }


class VideoFolderDataModule(FileDataModule, VideoDataModule):
    """Video files under ``root/<class>/`` (UCF101/HMDB51 layout), decoded with PyAV; see ``folder``.

    ``download=True`` is refused: video datasets are fetched by hand (their licences ask for it).
    """

    def __init__(
        self,
        frame_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        folds: int | None = None,
        fold: int | None = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(frame_size, int) or frame_size < 8:
            raise UserError(f"data.frame_size={frame_size!r} must be an integer of at least 8 (pixels per side).")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 <= value < 1:
                raise UserError(f"data.{name}={value} must be in [0, 1).")
        self.frame_size, self.val_fraction, self.test_fraction = frame_size, val_fraction, test_fraction
        self.folds = Folds.from_settings(folds, fold)  # k-fold: validation is one fold (replaces val_fraction)
        self._indexed: tuple[list[str], dict[str, FrameSource]] | None = None

    def prepare_data(self) -> None:
        if self.download:
            raise UserError(
                f"data.download=true: video datasets are not downloaded by this project (their licences ask that"
                f" you fetch them yourself). Put the videos under data.root={self.root} as <class>/<video> files"
                " and run with data.download=false."
            )

    def class_names(self) -> tuple[str, ...]:
        return tuple(self._index()[0])

    def frame_shape(self) -> tuple[int, int, int]:
        return (3, self.frame_size, self.frame_size)

    def load_sources(self) -> dict[str, FrameSource]:
        return self._index()[1]

    def _index(self) -> tuple[list[str], dict[str, FrameSource]]:
        if self._indexed is None:
            self._indexed = video_folder.index_folder(
                self.root, self.frame_size, self.seed, self.val_fraction, self.test_fraction, self.folds
            )
        return self._indexed
