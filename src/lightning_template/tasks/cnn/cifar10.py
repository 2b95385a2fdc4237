"""CIFAR-10 in its official binary format, read with numpy (no pickle), downloaded on request.

``cifar-10-batches-bin/`` holds ``data_batch_1.bin`` .. ``data_batch_5.bin`` and
``test_batch.bin``: 10,000 records each of 1 label byte then 3,072 pixel bytes
(1,024 red, 1,024 green, 1,024 blue; rows of 32 pixels). Nothing delimits the records,
so a file cut on a record boundary reads as fewer images: every file must have the
official size. The download's archive is checked against its published MD5; the
extracted files are not hashed (the dataset's authors publish no per-file checksums).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from lightning_template_core import UserError, md5_of

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
RECORD_BYTES = 1 + 3 * 32 * 32
RECORDS_PER_FILE = 10_000
FILE_BYTES = RECORDS_PER_FILE * RECORD_BYTES  # 30,730,000
# label i is CLASS_NAMES[i] (batches.meta.txt of the archive)
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 3, 32, 32) uint8`` and labels ``(n,) int64`` from one ``.bin`` file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise UserError(
            f"{path} is truncated or is not a CIFAR-10 binary batch: {raw.size:,} bytes is not a whole number of"
            f" {RECORD_BYTES:,}-byte records (1 label byte, then 3,072 pixel bytes)."
        )
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise UserError(f"{path} holds label {labels.max()}: CIFAR-10 labels are 0..9. Is this the CIFAR-100 file?")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _held(size: int) -> str:
    records, rest = divmod(size, RECORD_BYTES)
    images = f"{records:,} image" + ("" if records == 1 else "s")
    return f"{size:,} bytes, {images}" + (f" and {rest:,} bytes of a cut one" if rest else "")


def check_files(root: Path, files: tuple[str, ...] = TRAIN_FILES + TEST_FILES) -> None:
    """Refuse, in one message, every one of ``files`` that is missing or not of the official size (10,000
    records: another size would train on fewer images)."""
    folder = root / FOLDER
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}. Put the binary version there (the"
            f" extracted {URL}, a folder named {FOLDER}), point data.root at the folder that holds it, or set"
            " data.download=true to fetch it."
        )
    sizes = {name: (folder / name).stat().st_size for name in files}
    damaged = {name: size for name, size in sizes.items() if size != FILE_BYTES}
    if damaged:
        held = "; ".join(f"{name} is {_held(size)}" for name, size in damaged.items())
        raise UserError(
            f"CIFAR-10 in {folder} is damaged: each file of the binary version is {FILE_BYTES:,} bytes"
            f" ({RECORDS_PER_FILE:,} images of {RECORD_BYTES:,} bytes), but {held}: cut short, padded or not the"
            " official file. Run again with data.download=true to fetch the archive again (it replaces the folder),"
            f" or extract the official archive ({URL}) under data.root again."
        )


def read_split(root: Path, files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the given batch files under ``root/cifar-10-batches-bin``."""
    check_files(root, files)
    folder = root / FOLDER
    parts = [read_batch_file(folder / name) for name in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def download(root: Path, url: str = URL, md5: str = MD5) -> None:
    """Fetch and extract the archive into ``root`` unless its files are there already, at their size.

    The archive is checked against ``md5`` and extracted into a temporary folder that
    is moved into place only when complete, so a failed download leaves nothing behind.
    """
    files = [root / FOLDER / name for name in TRAIN_FILES + TEST_FILES]
    if all(path.is_file() and path.stat().st_size == FILE_BYTES for path in files):
        return
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".cifar10-") as tmp:
        archive = Path(tmp) / "cifar-10-binary.tar.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            raise UserError(
                f"Could not download CIFAR-10 from {url} ({err}). Download it where you have the network and"
                f" extract it under data.root={root} (the folder {FOLDER}), then run with data.download=false."
            ) from err
        if (actual := md5_of(archive)) != md5:
            raise UserError(
                f"The CIFAR-10 archive from {url} has MD5 {actual}, expected {md5}: the download is corrupt or"
                " not the binary version. Nothing was extracted: run again, or fetch the archive by hand."
            )
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        if not (Path(tmp) / FOLDER).is_dir():
            raise UserError(f"The archive from {url} holds no {FOLDER} folder: is it the binary version?")
        shutil.rmtree(root / FOLDER, ignore_errors=True)
        (Path(tmp) / FOLDER).rename(root / FOLDER)
