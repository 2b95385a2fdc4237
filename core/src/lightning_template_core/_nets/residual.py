"""Residual building blocks in plain torch.nn (no torchvision), shared by the convolutional models."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lightning_template_core._errors import UserError

Norm = Literal["batch", "group"]


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """BatchNorm mixes the samples of a micro-batch, so it depends on how the global
    batch is split; GroupNorm normalises each sample alone and does not."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise UserError(
        f"model.net.norm={kind!r} is not one of: batch, group (group keeps every split of the global batch exact)."
    )


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
