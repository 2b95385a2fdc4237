"""The video classifier's network: per-frame convolutions, a GRU over the frames in order, a linear classifier."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_template_core import BasicBlock, Norm, check_dropout, check_sizes, make_norm


class VideoNet(nn.Module):
    """Clips ``(N, T, 3, H, W)`` to logits ``(N, classes)``.

    Each frame goes through a stem and the residual blocks of ``nets/residual.py``; its feature map is
    pooled to a ``grid x grid`` map rather than to one vector, so a frame's features
    still say *where* things are (global pooling would keep only what), and the GRU
    reads the frames in order, which is what tells motion one way from the other.
    """

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = (16, 32),
        norm: Norm = "batch",
        grid: int = 4,
        hidden_size: int = 64,
        dropout: float = 0.0,
    ) -> None:
        check_sizes("model.net", widths=widths, grid=grid, hidden_size=hidden_size)
        check_dropout(dropout)
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), make_norm(norm, widths[0]), nn.ReLU())
        blocks = [BasicBlock(c_in, c_out, 2, norm) for c_in, c_out in itertools.pairwise(widths)]
        self.frames = nn.Sequential(stem, *blocks, nn.AdaptiveAvgPool2d(grid), nn.Flatten())
        self.project = nn.Sequential(nn.Linear(widths[-1] * grid * grid, hidden_size), nn.ReLU())
        self.temporal = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, num_classes))

    def forward(self, clips: Tensor) -> Tensor:
        batch, steps = clips.shape[:2]
        # frames in the layout the convolutions were put in (channels_last by the module, or not)
        stem_weight = self.frames[0][0].weight
        channels_last = stem_weight.is_contiguous(memory_format=torch.channels_last)
        frames = clips.flatten(0, 1).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )
        features = self.project(self.frames(frames)).view(batch, steps, -1)
        outputs, _ = self.temporal(features)
        return self.classifier(outputs[:, -1])
