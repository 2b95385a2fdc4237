"""A folder of image files in class subfolders (the ImageFolder layout), decoded once into a memory-mapped cache.

Layout and splits: ``root/<class>/<image>.<ext>``, as ``files.class_folders`` reads
them. Every image is read as ``image_files.read_pixels`` says (modes to RGB; the shorter
side scaled to ``image_size``, then the centre square) into one uint8 array of the
cache (``files.array_cache``): the first start decodes, on several threads; every later
start, and every DDP rank, maps the array, so memory and start-up do not grow with the
folder. A file Pillow cannot read (not an image, cut short) is listed with the reason
at every start and left out, never silently.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_template.tasks.cnn.image_files import IMAGE_EXTENSIONS, read_pixels
from lightning_template_core import (
    SPLITS,
    CacheWriter,
    ClassFolders,
    Folds,
    UserError,
    cache_folder,
    cache_key,
    cached_arrays,
)

IMAGES = ClassFolders("image", IMAGE_EXTENSIONS)
SHOWN_PROBLEMS = 20
DECODE_CHUNK = 256


@dataclass(frozen=True)
class ImageFolder:
    """The decoded images of a folder (mapped), their labels, and the rows of each split."""

    classes: list[str]
    images: np.ndarray  # (N, 3, size, size) uint8
    labels: np.ndarray  # (N,) int64
    rows: dict[str, np.ndarray]


def read_image_folder(
    root: Path,
    image_size: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    cache_dir: str | None = None,
    folds: Folds | None = None,
    threads: int | None = None,
) -> ImageFolder:
    """List, split and (once) decode the folder; unreadable files are reported and left out."""
    classes, files = IMAGES.find(root)
    paths = [path for path, _ in files]
    key = cache_key("images", {"image_size": image_size, "fit": "crop"}, paths)
    cache = cached_arrays(
        cache_folder(cache_dir, root),
        "images",
        key,
        lambda writer: _decode_all(writer, root, paths, image_size, threads or min(8, os.cpu_count() or 1)),
        f"{len(paths):,} images of {root}",
    )
    unreadable = {root / name: reason for name, reason in cache.info["unreadable"]}
    if len(unreadable) == len(paths):
        raise UserError(
            f"None of the {len(paths):,} image files under data.root={root} could be read (first:"
            f" {next(iter(unreadable))}: {next(iter(unreadable.values()))}). Point data.root at a folder of images"
            f" laid out as {IMAGES.layout}."
        )
    _report(unreadable)
    row_of = {path: row for row, path in enumerate(paths)}
    splits = IMAGES.split(root, files, seed, val_fraction, test_fraction, left_out=unreadable, folds=folds)
    IMAGES.check_not_empty(root, splits)
    rows = {split: np.array([row_of[path] for path, _ in splits[split]], dtype=np.int64) for split in SPLITS}
    counts = ", ".join(f"{split} {len(rows[split]):,}" for split in SPLITS)
    rank_zero_info(
        f"Image folder {root}: {len(paths) - len(unreadable):,} images in {len(classes)} classes ({counts}),"
        f" {image_size}x{image_size}; {len(unreadable)} unreadable file(s) left out; cache {cache.folder}"
    )
    labels = np.array([label for _, label in files], dtype=np.int64)
    return ImageFolder(classes, cache.arrays["images"], labels, rows)


def _decode_all(writer: CacheWriter, root: Path, paths: list[Path], size: int, threads: int) -> dict:
    """Decode every file into the cache's array (in order, on ``threads`` threads: Pillow releases the GIL)."""
    images = writer.array("images", (len(paths), 3, size, size), np.uint8)
    unreadable = []

    def decode(path: Path) -> np.ndarray | str:
        try:
            return read_pixels(path, size, "crop")
        except Exception as err:  # Pillow raises many types for a bad file; each is reported, none ends the run
            return f"{type(err).__name__}: {err}"

    with ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(paths), DECODE_CHUNK):  # a chunk at a time: memory stays flat
            chunk = paths[start : start + DECODE_CHUNK]
            for row, (path, pixels) in enumerate(zip(chunk, pool.map(decode, chunk), strict=True), start):
                if isinstance(pixels, str):
                    unreadable.append([path.relative_to(root).as_posix(), pixels])
                else:
                    images[row] = pixels
    images.flush()
    return {"unreadable": unreadable}


def _report(unreadable: dict[Path, str]) -> None:
    if not unreadable:
        return
    shown = "\n".join(f"  {path}: {reason}" for path, reason in list(unreadable.items())[:SHOWN_PROBLEMS])
    more = f"\n  ... and {len(unreadable) - SHOWN_PROBLEMS} more" if len(unreadable) > SHOWN_PROBLEMS else ""
    rank_zero_warn(
        f"{len(unreadable)} file(s) in the image folder could not be read and are left out (fix or remove them):\n"
        f"{shown}{more}"
    )
