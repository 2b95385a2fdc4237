"""Files that are either complete or absent: what a run writes is read back as proof that it finished.

A checkpoint, ``summary.json``, ``eval.json`` or ``predictions.csv`` cut short by a kill
or a full disk would otherwise look like a result. Each is written to a temporary file
beside its target, flushed to disk and renamed over it: a rename within one directory
is atomic, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from lightning_template_core._errors import UserError, file_system_problem


def make_folder(path: str | Path, setting: str) -> Path:
    """``path`` as a folder a command writes into (made if missing), or a UserError naming ``setting`` and the fix:
    no permission, a read-only disk, a file in the way, a pseudo file system (``/proc``) where none can be made."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fix = (
            "no folder can be made there (a pseudo file system such as /proc, or a parent folder that is gone)"
            if err.errno == errno.ENOENT
            else file_system_problem(err, path).split(": ", 1)[-1].split(". Files are written")[0]
        )
        raise UserError(f"{setting}={path} cannot be used as a folder to write into ({err.strerror}): {fix}.") from err
    if not os.access(path, os.W_OK):
        raise UserError(
            f"{setting}={path} is not writable by this user: give a folder this user may write, as {setting}=<folder>."
        )
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    A file-system error (a full disk, a folder at ``path``, no permission) is a UserError
    naming ``path`` and the fix, with nothing left behind.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)
    except Exception as err:
        if not isinstance(err, OSError):
            if not _full(path.parent):
                raise
            # a writer that reports a failed write as its own error (torch.save: "unexpected pos ...")
            err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        raise UserError(file_system_problem(err, path)) from err
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has less than 1 MiB left for this user."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 2**20


def atomic_write_text(path: str | Path, text: str) -> None:
    """``path.write_text(text)`` (UTF-8), complete or not at all."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header line, for :func:`atomic_write_text`."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
