"""The image classifier's network: a small residual network for 32x32 images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lightning_template_core import BasicBlock, Norm, check_dropout, check_sizes, make_norm


class SmallResNet(nn.Module):
    """Stem, one :class:`BasicBlock` per width (each after the first halves the resolution), pool, linear.

    Its size is set by ``widths``: (16, 32, 64), the ``cnn`` experiment's, has 78 k parameters;
    (64, 128, 256), ``cnn_cifar10``'s, 1.2 M.
    """

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = (16, 32, 64),
        norm: Norm = "batch",
        dropout: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        check_sizes("model.net", widths=widths, in_channels=in_channels)
        check_dropout(dropout)
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
