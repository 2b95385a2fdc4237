"""One image file as the network sees it, the same in training (image folders) and in ``predict``.

Modes: every file becomes 8-bit RGB. Greyscale is repeated over the three channels;
a palette is expanded; CMYK and YCbCr are converted by Pillow; an alpha channel is
dropped (the colours under it are kept, as torchvision's ImageFolder does); 16-bit and
32-bit integer images (``I;16``, ``I``: 16-bit PNG and TIFF) are scaled from 0..65535 to
0..255 (value / 257), never clipped; floating-point images (``F``) are clipped to 0..255.
An EXIF orientation is applied, so a phone photo is upright.

Size: ``fit="crop"`` (image folders) scales the shorter side to ``size`` then takes the
centre square; ``fit="squash"`` (CIFAR-style sets, the shipped nets' 32x32 inputs)
resizes to ``size`` x ``size``, changing the aspect ratio. Resampling is Pillow's
bilinear filter, antialiased when it shrinks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

RESAMPLING = Image.Resampling.BILINEAR
FITS = ("crop", "squash")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB, by the rules of the module's docstring."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def read_pixels(path: Path, size: int, fit: str = "crop") -> np.ndarray:
    """``(3, size, size)`` uint8 pixels of the image file ``path``.

    Raises what Pillow raises for a file that is not an image (``UnidentifiedImageError``)
    or is cut short (``OSError``).
    """
    with Image.open(path) as image:
        if fit == "crop":
            image.draft("RGB", (size, size))  # a JPEG decodes at a reduced scale that is still at least `size`
        image = ImageOps.exif_transpose(image)
        return pixels_of(to_rgb(image), size, fit)


def pixels_of(image: Image.Image, size: int, fit: str) -> np.ndarray:
    """An RGB image at ``size`` x ``size`` (``fit``: crop or squash), as ``(3, size, size)`` uint8."""
    if fit == "squash":
        image = image.resize((size, size), RESAMPLING)
    else:
        width, height = image.size
        scale = size / min(width, height)
        width, height = max(size, round(width * scale)), max(size, round(height * scale))
        image = image.resize((width, height), RESAMPLING)
        left, top = (width - size) // 2, (height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
