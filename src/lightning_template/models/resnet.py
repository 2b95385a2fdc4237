"""A small ResNet for 32x32 images, in plain torch.nn (no torchvision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

Norm = Literal["batch", "group"]


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """BatchNorm mixes the samples of a micro-batch, so it depends on how the global
    batch is split; GroupNorm normalises each sample alone and does not."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"model.norm={kind!r} is not one of: batch, group")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (a 1x1 convolution when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: Norm) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = make_norm(norm, out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), make_norm(norm, out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


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
        self.out_features = channels

    def features(self, x: Tensor) -> Tensor:
        """Pooled features before the classifier, shape ``(batch, widths[-1])``."""
        return self.head[:2](self.blocks(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))
