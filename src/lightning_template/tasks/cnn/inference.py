"""The trained image classifier outside training: classify image files and CIFAR-10 batch files; export the network.

An image file (anything Pillow opens: PNG, JPEG, ...) is read as in training
(``image_files``: modes to 8-bit RGB; a model trained on an image folder takes the
centre square at its input size, one trained on 32x32 sets squashes the image to it);
then normalised as in training: ``(pixels / 255 - mean) / std`` per channel, with the
training split's mean and std saved in the checkpoint. A CIFAR-10 binary batch file
(``.bin``) gives one input per record, named ``<file>#<record>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from lightning_template.tasks.cnn import cifar10
from lightning_template.tasks.cnn.image_files import read_pixels
from lightning_template_core import ExportSpec, TaskInference, visible_files


class ImageInference(TaskInference):
    """Image files and CIFAR-10 batch files in, class probabilities out."""

    def _normalisation(self) -> tuple[Tensor, Tensor]:
        stats = self.description.extra["normalisation"]
        return torch.tensor(stats["mean"]).view(-1, 1, 1), torch.tensor(stats["std"]).view(-1, 1, 1)

    def normalised(self, pixels: Tensor) -> Tensor:
        """uint8 ``(C, H, W)`` pixels as the network saw them in training."""
        mean, std = self._normalisation()
        return (pixels.float().div_(255) - mean) / std

    def input_files(self, path: Path) -> list[Path]:
        return visible_files(path)

    def input_help(self) -> str:
        return (
            "The image classifier reads image files Pillow opens (PNG, JPEG, ...) and CIFAR-10 binary batch files"
            " (.bin)."
        )

    def read_input(self, path: Path) -> Iterator[tuple[str, Tensor]]:
        if path.suffix == ".bin":
            images, _ = cifar10.read_batch_file(path)
            for record, image in enumerate(images):
                yield f"{path}#{record}", self.normalised(torch.from_numpy(image))
            return
        _, size, _ = self.description.item_shape
        pixels = read_pixels(path, size, self._fit())  # UnidentifiedImageError for a file that is not an image
        yield str(path), self.normalised(torch.from_numpy(pixels))

    def _fit(self) -> str:
        return self.description.extra.get("fit", "squash")  # checkpoints from before image folders squashed

    def export_spec(self) -> ExportSpec:
        mean, std = self._normalisation()
        normalisation = {
            "how": "pixels / 255 in [0, 1], then (x - mean) / std per channel (RGB)",
            "mean": mean.flatten().tolist(),
            "std": std.flatten().tolist(),
        }
        resize = {
            "squash": "bilinear, squashed to the shape's height and width",
            "crop": "bilinear, the shorter side to the shape's height, then the centre square",
        }[self._fit()]
        details = {"normalisation": normalisation, "resize": resize}
        return self.classifier_export(self.model.net, "images", details)


INFERENCE = ImageInference
