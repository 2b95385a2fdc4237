"""The OS file lock every part of the core takes (``flock``): the OS drops it when its holder dies.

The run directory's lock (who may write a run), a cache's build lock (one process decodes,
the others wait and read) and a sweep's study lock on one machine all take it here.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def held_exclusively(path: Path) -> Iterator[IO[str]]:
    """Wait for, then hold, the exclusive lock on ``path`` (created if missing) for the block; yields its handle."""
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock(handle: IO[str], shared: bool = False) -> bool:
    """Take the lock on ``handle``'s file without waiting: False where another process holds it.

    An OSError other than "held" (a file system without locks: ENOLCK, EOPNOTSUPP) is raised.
    """
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
