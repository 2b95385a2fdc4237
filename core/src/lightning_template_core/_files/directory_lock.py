"""One process at a time in a run directory: an OS lock held for the process's whole life.

The lock is ``flock`` on ``<run dir>/.lock``. The OS releases it when the process ends,
however it ends (SIGKILL included), so a killed run never blocks its own ``ckpt_path=last``.
``fit`` holds it exclusively and records itself in the file (host, pid, command, since when)
for the refusal message. The commands that read a trained run and add a result to it
(evaluate, predict, generate, export) hold it shared: any number of them at once, never
beside a ``fit``. A process that is refused opens the file without writing.

Network file systems: Linux's NFS client turns ``flock`` into a lock the server keeps (NFSv4,
or NFSv3 with its lock daemon), so processes on different machines exclude each other; a
mount with ``nolock`` or ``local_lock=all`` only excludes processes of one machine. Where the
file system has no locks (Lustre without ``-o flock``, some FUSE mounts), the command warns
and runs unguarded.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import IO

from lightning_template_core._errors import UserError
from lightning_template_core._files.file_lock import try_lock, unlock
from lightning_template_core._reporting import RankZeroLogger
from lightning_template_core._secrets import mask

log = RankZeroLogger(__name__)

LOCK_NAME = ".lock"
_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}

# The lock files this process holds, by directory: open until the process ends.
_held: dict[Path, IO[str]] = {}


def _holder() -> dict[str, object]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": mask(shlex.join([Path(sys.argv[0]).stem, *sys.argv[1:]])),  # fit.py under python -m: fit
        "since": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _describe(record: str) -> str:
    try:
        holder = json.loads(record)
        return f"`{holder['command']}` (pid {holder['pid']} on {holder['host']}, since {holder['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process (its record in the lock file is unreadable)"


def _holder_of(handle: IO[str]) -> str:
    """Who holds the lock ``handle`` could not take: a fit (exclusive, its record in the file) or readers."""
    if not try_lock(handle, shared=True):  # taken only if no fit holds it
        handle.seek(0)
        return _describe(handle.read())
    unlock(handle)
    return "a command using its trained model (evaluate, predict, generate or export)"


def hold_run_directory(run_dir: Path, shared: bool = False, setting: str = "hydra.run.dir") -> None:
    """Lock ``run_dir`` for the rest of this process (``shared``: beside other shared holders), or raise
    a UserError naming the process that has it."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = (run_dir / LOCK_NAME).open("a+")  # never truncated unless the lock is ours
    except OSError as err:
        raise UserError(
            f"{setting}={run_dir} cannot be used as a run directory ({err.strerror}): give a writable folder"
            f" as {setting}=<folder>."
        ) from err
    try:
        taken = try_lock(handle, shared)
    except OSError as err:
        handle.close()
        if err.errno not in _UNSUPPORTED:
            raise
        log.warning(
            f"{run_dir} is on a file system without locks ({err.strerror}): nothing stops a second process"
            " from writing this run directory at the same time."
        )
        return
    if not taken:
        holder = _holder_of(handle)
        handle.close()
        raise UserError(
            f"{setting}={run_dir} is in use by {holder}: one process at a time writes a run directory. Wait"
            f" for it to end (or stop it), or give this command another {setting}. Nothing was changed there."
        )
    if not shared:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_holder()) + "\n")
        handle.flush()
    _held[run_dir] = handle


def held_by_a_fit(run_dir: Path) -> bool:
    """Whether a ``fit`` holds ``run_dir`` now (its exclusive lock), so that a reader must not write there."""
    path = Path(run_dir) / LOCK_NAME
    if not path.is_file():
        return False
    with path.open("a+") as handle:
        try:
            taken = try_lock(handle, shared=True)
        except OSError:
            return False  # no locks on this file system: nothing tells
        if taken:
            unlock(handle)
        return not taken


def wait_until_free(run_dir: Path, timeout: float, poll: float = 0.5) -> bool:
    """Wait up to ``timeout`` seconds for no process to hold ``run_dir``; False if one still does.

    For a sweep's retry: the lost attempt's ``fit`` may still be saving its state when the
    retry starts, and the retry must continue from that state, not be refused.
    """
    path = Path(run_dir) / LOCK_NAME
    if not path.is_file():
        return True
    deadline = time.monotonic() + timeout
    with path.open("a+") as handle:
        while True:
            try:
                taken = try_lock(handle)
            except OSError as err:
                return err.errno in _UNSUPPORTED  # no locks there: nothing to wait for
            if taken:
                unlock(handle)
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)
