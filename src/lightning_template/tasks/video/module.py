"""The video classifier task: a per-frame convolutional network, a GRU over the frames in order, a linear classifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_template.tasks.video.clips import ClipBatch
from lightning_template_core import DataDescription, ExactMean, GlobalBatchModule, OptimizerFactory


class VideoClassifier(GlobalBatchModule):
    """Cross-entropy per clip; evaluation also averages the logits of each video's clips.

    ``val/acc`` and ``test/acc`` count clips, ``val/video_acc`` and ``test/video_acc``
    count videos (every evaluation batch holds whole videos, see ``VideoClips``).
    ``net`` builds the network (``model.net``, a partial) given the number of classes.
    """

    # logged at each validation: fit and sweep check their metric against it before training
    VALIDATION_METRICS: ClassVar[tuple[str, ...]] = ("val/loss", "val/acc", "val/video_acc")
    TRAINING_METRICS: ClassVar[tuple[str, ...]] = ("train/loss", "train/acc")

    def __init__(
        self,
        data: DataDescription,
        net: Callable[..., nn.Module],
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__(data, optimizer, scheduler)
        num_classes = self.data.num_classes
        self.net = net(num_classes=num_classes)
        self.net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        if compile:
            self.net.compile()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        for split in ("val", "test"):
            setattr(self, f"{split}_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{split}_video_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{split}_loss", ExactMean())

    def forward(self, clips: Tensor) -> Tensor:
        return self.net(clips)

    def training_step(self, batch: ClipBatch, batch_idx: int) -> Tensor:
        logits = self(batch.clips)
        losses = F.cross_entropy(logits, batch.labels, reduction="none")
        self.log_step_metric("train/loss", losses.mean().detach())
        self.train_acc.update(logits, batch.labels)
        return self.global_mean(losses.sum(), batch.global_items)

    def on_train_epoch_end(self) -> None:
        self.log_epoch_metric("train/acc", self.train_acc)

    def evaluate(self, batch: ClipBatch, split: str) -> None:
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
