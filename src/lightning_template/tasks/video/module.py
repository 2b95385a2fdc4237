"""The video classifier task: a per-frame CNN, a GRU over the frames in order, a linear classifier."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_template.tasks.video.clips import ClipBatch
from lightning_template.training.metrics import ExactMean
from lightning_template.nets.residual import BasicBlock, Norm, make_norm
from lightning_template.training.module import GlobalBatchModule, OptimizerFactory


class VideoNet(nn.Module):
    """Clips ``(N, T, 3, H, W)`` to logits ``(N, classes)``.

    Each frame goes through a stem and the residual blocks of ``models/resnet.py``; its feature map is
    pooled to a ``grid x grid`` map rather than to one vector, so a frame's features
    still say *where* things are (global pooling would keep only what), and the GRU
    reads the frames in order, which is what tells motion one way from the other.
    """

    def __init__(
        self, num_classes: int, widths: Sequence[int], norm: Norm, grid: int, hidden_size: int, dropout: float
    ) -> None:
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), make_norm(norm, widths[0]), nn.ReLU())
        blocks = [BasicBlock(c_in, c_out, 2, norm) for c_in, c_out in itertools.pairwise(widths)]
        self.frames = nn.Sequential(stem, *blocks, nn.AdaptiveAvgPool2d(grid), nn.Flatten())
        self.project = nn.Sequential(nn.Linear(widths[-1] * grid * grid, hidden_size), nn.ReLU())
        self.temporal = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, num_classes))

    def forward(self, clips: Tensor, memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
        batch, steps = clips.shape[:2]
        frames = clips.flatten(0, 1).contiguous(memory_format=memory_format)
        features = self.project(self.frames(frames)).view(batch, steps, -1)
        outputs, _ = self.temporal(features)
        return self.classifier(outputs[:, -1])


class VideoClassifier(GlobalBatchModule):
    """Cross-entropy per clip; evaluation also averages the logits of each video's clips.

    ``val/acc`` and ``test/acc`` count clips, ``val/video_acc`` and ``test/video_acc``
    count videos (every evaluation batch holds whole videos, see ``VideoClips``).
    ``num_classes=None`` takes the number from the DataModule (a video folder's classes).
    """

    def __init__(
        self,
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        num_classes: int | None = None,
        norm: Norm = "batch",
        widths: Sequence[int] = (16, 32),
        grid: int = 4,
        hidden_size: int = 64,
        dropout: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net: VideoNet | None = None
        if num_classes is not None:
            self._build(num_classes)

    def _build(self, num_classes: int) -> None:
        hp = self.hparams
        self.net = VideoNet(num_classes, hp.widths, hp.norm, hp.grid, hp.hidden_size, hp.dropout)
        self.net.frames.to(memory_format=self.memory_format)
        if hp.compile:
            self.net.compile()
        hp.num_classes = num_classes
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        for split in ("val", "test"):
            setattr(self, f"{split}_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{split}_video_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{split}_loss", ExactMean())

    def configure_model(self) -> None:
        if self.net is None:
            self._build(self.trainer.datamodule.num_classes)

    def forward(self, clips: Tensor) -> Tensor:
        return self.net(clips, self.memory_format)

    def training_step(self, batch: ClipBatch, batch_idx: int) -> Tensor:
        logits = self(batch.clips)
        losses = F.cross_entropy(logits, batch.labels, reduction="none")
        self.log("train/loss", losses.mean().detach(), on_step=True, prog_bar=True, batch_size=len(losses))
        self.train_acc(logits, batch.labels)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(losses))
        return self.global_mean(losses.sum(), self.trainer.datamodule.layout.global_batch_size)

    def _evaluate(self, batch: ClipBatch, split: str) -> None:
        logits = self(batch.clips)
        per_video = batch.clips_per_video
        video_logits = logits.view(-1, per_video, logits.shape[-1]).mean(1)
        metrics = {
            "loss": getattr(self, f"{split}_loss"),
            "acc": getattr(self, f"{split}_acc"),
            "video_acc": getattr(self, f"{split}_video_acc"),
        }
        metrics["loss"].update(F.cross_entropy(logits, batch.labels, reduction="none"))
        metrics["acc"].update(logits, batch.labels)
        metrics["video_acc"].update(video_logits, batch.labels[::per_video])
        for name, metric in metrics.items():
            self.log(f"{split}/{name}", metric, on_step=False, on_epoch=True, prog_bar=split == "val")

    def validation_step(self, batch: ClipBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: ClipBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
