"""Arrays decoded once from a data set's files and memory-mapped by every process after.

Decoding a folder of images (or tokenising a corpus) at every start, in every DDP rank,
costs start-up and memory that grow with the data. A cache holds the decoded arrays as
raw files that each process maps read-only: the page cache shares them between ranks,
and a process's memory holds only the pages it touches.

A cache is a folder ``<cache dir>/<name>-<key>``: ``<array>.bin`` files and
``manifest.json``, written last. Its key hashes the cache format, the settings that
change the arrays, and each source file's path, size and modification time: a changed,
added or removed source, or another setting, makes another key, so a stale cache is
never read. (A file rewritten in place with the same size and time is not noticed:
touch it.) It is built in a temporary folder, moved into place whole, under a file lock
that every process takes before reading: the first builds it, the others (other ranks,
other runs) wait and then map it. A cache whose files do not match its manifest (cut
short, edited) is said to be damaged in the log and built again.

Where: ``data.cache_dir`` if set; otherwise ``<data.root>/.cache`` where the data folder
is writable, else a per-user folder (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``lightning-template``), as shared read-only data sets on clusters need; the log says which.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_template_core._errors import UserError
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._files.file_lock import held_exclusively
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)

FORMAT = 2  # bump when the layout of a cache changes: old caches are then never read (2: checksums)
MANIFEST = "manifest.json"


def cache_folder(cache_dir: str | Path | None, root: Path) -> Path:
    """Where caches of the data under ``root`` live (see the module's docstring), created and writable."""
    if cache_dir is not None:
        folder = Path(cache_dir).expanduser()
        _writable_or_refuse(folder, f"data.cache_dir={cache_dir}")
        return folder
    if os.access(root, os.W_OK):
        folder = root / ".cache"
        with contextlib.suppress(OSError):
            folder.mkdir(exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lightning-template-core"
    _writable_or_refuse(base, f"the per-user cache folder (data.root={root} is not writable)")
    log.info(f"Data cache: data.root={root} is not writable, so the cache is under {base} (data.cache_dir)")
    return base


def _writable_or_refuse(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, "not writable")
    except OSError as err:
        raise UserError(
            f"Cannot write the data cache in {what} ({err.strerror or err}). Set data.cache_dir to a folder you can"
            " write (a fast local disk is best)."
        ) from err


def cache_key(name: str, settings: Mapping[str, Any], sources: Iterable[Path]) -> str:
    """The hash that names a cache: the format, ``settings`` and each source's path, size, file and times.

    The change time and the inode come in with the size and modification time: a file
    rewritten in place with its old size and modification time (``cp -p``, ``rsync -t``,
    tar) still gets a new change time, which no tool sets. One ``stat`` per source, no read:
    a stale cache is never used, and a copy of the data elsewhere is decoded once again.
    """
    digest = hashlib.sha256(json.dumps([FORMAT, name, dict(settings)], sort_keys=True, default=str).encode())
    for path in sources:
        stat = path.stat()
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}".encode())
    return digest.hexdigest()[:20]


@dataclass
class CacheWriter:
    """Where a builder puts its arrays (each ``name`` once), written in a folder that becomes the cache."""

    folder: Path
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype | str) -> np.memmap:
        """A new array of known shape, filled in place (only the pages being written are in memory)."""
        self.arrays[name] = {"shape": list(shape), "dtype": np.dtype(dtype).str}
        return np.memmap(self.folder / f"{name}.bin", dtype=dtype, mode="w+", shape=shape)

    def remove(self, name: str) -> None:
        """Drop the array ``name`` (a step of the build, not part of the cache)."""
        del self.arrays[name]
        (self.folder / f"{name}.bin").unlink()

    @contextlib.contextmanager
    def appended(self, name: str, dtype: np.dtype | str) -> Iterator[Callable[[np.ndarray], None]]:
        """``with writer.appended(name, dtype) as append: append(chunk)...``: an array of unknown length."""
        count = 0
        with (self.folder / f"{name}.bin").open("wb") as handle:

            def append(chunk: np.ndarray) -> None:
                nonlocal count
                np.ascontiguousarray(chunk, dtype=dtype).tofile(handle)
                count += len(chunk)

            yield append
        self.arrays[name] = {"shape": [count], "dtype": np.dtype(dtype).str}


@dataclass(frozen=True)
class CachedArrays:
    """A built cache: its arrays, mapped read-only, and what its builder recorded (``info``)."""

    folder: Path
    arrays: dict[str, np.ndarray]
    info: dict[str, Any]


def cached_arrays(
    folder: Path,
    name: str,
    key: str,
    build: Callable[[CacheWriter], dict[str, Any]],
    what: str,
    check: Callable[[CachedArrays], str | None] | None = None,
) -> CachedArrays:
    """The cache ``<folder>/<name>-<key>``, built by ``build`` first if it is missing or damaged.

    ``build(writer)`` fills the writer's arrays and returns the JSON-able ``info`` to keep
    beside them; ``what`` names the data in the log ("image folder /data/pets").
    ``check(cache)`` looks into a mapped cache's contents (ids within the vocabulary, labels
    within the classes, offsets within the tokens) and says what is wrong, or None: a cache
    whose sizes match but whose contents were damaged is built again, never trained on.
    """
    target = folder / f"{name}-{key}"
    with held_exclusively(folder / f".{name}-{key}.lock"):
        problem = _damage(target)
        if problem is None and check is not None:
            problem = check(_open(target))
        if problem is None:
            return _open(target)
        _list_other_caches(folder, name, target)
        if problem != "missing":
            log.info(f"Data cache {target} is damaged ({problem}): building it again")
            shutil.rmtree(target, ignore_errors=True)
        log.info(f"Data cache: decoding {what} once into {target}")
        partial = folder / f".{name}-{key}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            partial.mkdir(parents=True)
            writer = CacheWriter(partial)
            info = build(writer)
            for name_of_array, array in writer.arrays.items():
                array["bytes"] = int(np.prod(array["shape"])) * np.dtype(array["dtype"]).itemsize
                array["adler32"] = checksum(partial / f"{name_of_array}.bin")
            for path in partial.iterdir():
                with path.open("rb+") as handle:
                    os.fsync(handle.fileno())
            atomic_write_text(partial / MANIFEST, json.dumps({"format": FORMAT, "arrays": writer.arrays, "info": info}))
            os.replace(partial, target)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UserError(
                    f"The disk filled while the data cache was written in {folder} ({err.strerror}); nothing of it is"
                    " kept. Free space there, or set data.cache_dir to a folder on a disk with room for the decoded"
                    " data."
                ) from err
            raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return _open(target)


def _list_other_caches(folder: Path, name: str, target: Path) -> None:
    """One line on the other caches of this kind in ``folder`` (of changed sources or other settings), with their
    size: they are never removed here, as another run may read them."""
    others = [path for path in folder.glob(f"{name}-*") if path.is_dir() and path != target]
    if others:
        size = sum(file.stat().st_size for path in others for file in path.iterdir() if file.is_file())
        log.info(
            f"Data cache: {len(others)} other {name} cache(s) in {folder} ({size / 2**20:,.1f} MiB), of changed"
            " sources or other settings: remove those no run reads."
        )


def _damage(folder: Path) -> str | None:
    """None for a complete cache; "missing"; or what is wrong with it."""
    if not folder.is_dir():
        return "missing"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        arrays = manifest["arrays"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its {MANIFEST} is unreadable: {err}"
    if manifest.get("format") != FORMAT:
        return f"format {manifest.get('format')}, not {FORMAT}"
    for array, spec in arrays.items():
        path = folder / f"{array}.bin"
        size = path.stat().st_size if path.is_file() else None
        if size != spec.get("bytes"):
            return f"{path.name} is {size} bytes, its manifest says {spec.get('bytes')}"
        if not _verified(path, spec.get("adler32")):
            return f"{path.name}'s contents changed since it was built (its checksum differs)"
    return None


def _verified(path: Path, expected: int | None) -> bool:
    """Whether ``path`` holds the bytes it was built with: checked by its checksum once, then again only when the
    file's stat changes (any write changes its change time, which no tool sets back). The checksum costs about
    0.17 s for a 100M-token corpus (400 MB) here; a start after the first costs one stat per array."""
    stat = path.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}:{expected}"
    record = path.with_name(f".{path.name}.verified")
    if record.is_file() and record.read_text() == stamp:
        return True
    if checksum(path) != expected:
        return False
    with contextlib.suppress(OSError):  # a read-only cache is checked again next time
        atomic_write_text(record, stamp)  # under the cache's lock
    return True


def checksum(path: Path, chunk: int = 1 << 24) -> int:
    """Adler-32 of a file, read in chunks: what tells a cache's bytes changed after it was built."""
    value = 1
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            value = zlib.adler32(block, value)
    return value


def _open(folder: Path) -> CachedArrays:
    manifest = json.loads((folder / MANIFEST).read_text())
    arrays = {
        name: _map(folder / f"{name}.bin", np.dtype(spec["dtype"]), tuple(spec["shape"]))
        for name, spec in manifest["arrays"].items()
    }
    return CachedArrays(folder, arrays, manifest["info"])


def _map(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if 0 in shape:  # numpy cannot map an empty file
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)
