"""The CNN image classifier task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_template.training.metrics import ExactMean
from lightning_template.nets.residual import BasicBlock, Norm, make_norm
from lightning_template.training.module import GlobalBatchModule, OptimizerFactory


class SmallResNet(nn.Module):
    """Stem, one :class:`BasicBlock` per width (each after the first halves the resolution), pool, linear.

    With the default widths (32, 64, 128) it has about 0.3 M parameters.
    """

    def __init__(
        self,
        num_classes: int = 10,
        widths: Sequence[int] = (32, 64, 128),
        norm: Norm = "batch",
        dropout: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        make_norm(norm, widths[0])  # fail early on an unknown norm
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), make_norm(norm, widths[0]), nn.ReLU()
        )
        blocks, channels = [], widths[0]
        for i, width in enumerate(widths):
            blocks.append(BasicBlock(channels, width, 1 if i == 0 else 2, norm))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


class ImageClassifier(GlobalBatchModule):
    """A :class:`SmallResNet` trained with cross-entropy; accuracy and loss per split.

    ``channels_last`` stores activations NHWC, which convolutions run faster on (CPU
    and GPU alike). ``compile=True`` compiles the inner network only: compiling the
    whole LightningModule breaks ``self.log`` on torch 2.13 / Lightning 2.6.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        norm: Norm = "batch",
        widths: Sequence[int] = (32, 64, 128),
        dropout: float = 0.0,
        num_classes: int = 10,
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = SmallResNet(num_classes, tuple(widths), norm, dropout)
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

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        losses = F.cross_entropy(logits, labels, reduction="none", label_smoothing=self.label_smoothing)
        self.log("train/loss", losses.mean().detach(), on_step=True, prog_bar=True)
        self.train_acc(logits, labels)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return self.global_mean(losses.sum(), self.trainer.datamodule.layout.global_batch_size)

    def _evaluate(self, batch: tuple[Tensor, Tensor], split: str) -> None:
        images, labels = batch
        logits = self(images)
        loss, acc = getattr(self, f"{split}_loss"), getattr(self, f"{split}_acc")
        loss.update(F.cross_entropy(logits, labels, reduction="none"))
        acc.update(logits, labels)
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, prog_bar=split == "val")
        self.log(f"{split}/acc", acc, on_step=False, on_epoch=True, prog_bar=split == "val")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")
