"""The CNN image classifier task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_template.tasks.cnn.dataset import ImageBatch
from lightning_template_core import DataDescription, ExactMean, GlobalBatchModule, OptimizerFactory


class ImageClassifier(GlobalBatchModule):
    """A network (``model.net``, a partial given the number of classes) trained with cross-entropy;
    accuracy and loss per split.

    ``channels_last`` stores activations NHWC, which convolutions run faster on (CPU
    and GPU alike). ``compile=True`` compiles the inner network only: compiling the
    whole LightningModule breaks ``self.log`` on torch 2.13 / Lightning 2.6.
    """

    # logged at each validation: fit and sweep check their metric against it before training
    VALIDATION_METRICS: ClassVar[tuple[str, ...]] = ("val/loss", "val/acc")
    TRAINING_METRICS: ClassVar[tuple[str, ...]] = ("train/loss", "train/acc")

    def __init__(
        self,
        data: DataDescription,
        net: Callable[..., nn.Module],
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__(data, optimizer, scheduler)
        num_classes = self.data.num_classes
        self.net = net(num_classes=num_classes, in_channels=self.data.item_shape[0])
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:
            self.net.compile()
        self.label_smoothing = label_smoothing
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        for split in ("val", "test"):
            setattr(self, f"{split}_acc", MulticlassAccuracy(num_classes, average="micro"))
            setattr(self, f"{split}_loss", ExactMean())

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))

    def training_step(self, batch: ImageBatch, batch_idx: int) -> Tensor:
        images, labels, global_items = batch
        logits = self(images)
        losses = F.cross_entropy(logits, labels, reduction="none", label_smoothing=self.label_smoothing)
        self.log_step_metric("train/loss", losses.mean().detach())
        self.train_acc.update(logits, labels)
        return self.global_mean(losses.sum(), global_items)

    def on_train_epoch_end(self) -> None:
        self.log_epoch_metric("train/acc", self.train_acc)

    def evaluate(self, batch: ImageBatch, split: str) -> None:
        images, labels, _ = batch
        logits = self(images)
        loss, acc = getattr(self, f"{split}_loss"), getattr(self, f"{split}_acc")
        loss.update(F.cross_entropy(logits, labels, reduction="none"))
        acc.update(logits, labels)
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, prog_bar=split == "val")
        self.log(f"{split}/acc", acc, on_step=False, on_epoch=True, prog_bar=split == "val")
