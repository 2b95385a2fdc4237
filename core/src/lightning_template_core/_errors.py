"""User mistakes reported as one paragraph, without a traceback."""

from __future__ import annotations

import errno
import functools
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from lightning_template_core._stop_before_training import EXIT_STOPPED

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the config, the data or a checkpoint that the user can fix.

    The message names the setting at fault and says how to fix it; commands print it
    as-is and exit with status 2 instead of showing a traceback.
    """


class RunStopped(Exception):
    """Training stopped on a signal after saving a checkpoint at an optimizer step; the run can continue."""

    def __init__(self, signal_name: str, step: int, checkpoint: str) -> None:
        super().__init__(f"{signal_name} at step {step}")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


_NO_SPACE = "free space there, or write to another disk"
_NO_ACCESS = "give this user the right to write there, or use another path"
_FILE_IN_THE_WAY = "a part of the path is a file, not a folder; give another path"
# Errors the user fixes on the file system, not in the code, and how
FILE_SYSTEM_FIXES = {
    errno.ENOSPC: _NO_SPACE,
    errno.EDQUOT: _NO_SPACE,
    errno.EFBIG: "the file is larger than this file system or a limit (ulimit -f) allows; write to another disk",
    errno.EACCES: _NO_ACCESS,
    errno.EPERM: _NO_ACCESS,
    errno.EROFS: "the file system is read-only; use a path on a writable one",
    errno.EISDIR: "a folder is there; give the path of a file",
    errno.ENOTDIR: _FILE_IN_THE_WAY,
    errno.EEXIST: _FILE_IN_THE_WAY,  # what mkdir says of a file in its path
    errno.ENAMETOOLONG: "the name is too long for this file system; give a shorter path",
}


def file_system_problem(err: OSError, path: str | Path | None = None) -> str:
    """One paragraph for ``err`` at ``path`` (default: the path the error names): what failed and the fix."""
    where = path if path is not None else err.filename
    fix = FILE_SYSTEM_FIXES.get(err.errno or 0, "use another path, or fix the file system's permissions")
    return (
        f"Cannot write {where} ({err.strerror or err}): {fix}. Files are written whole or not at all, so nothing"
        " half-written is left (a fit continues from its last complete checkpoint with ckpt_path=last)."
    )


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and what it was raised from or during (Hydra's ``instantiate`` wraps what a constructor raises)."""
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


# Lightning's own checks of a Trainer setting against the data, raised as ValueError once the loaders exist
# (``trainer.val_check_interval`` larger than an epoch's batches): the settings cannot see the data's size
LIGHTNING_SETTING_ERRORS = ("`val_check_interval`",)


def _user_error_in(err: BaseException) -> BaseException | None:
    """The UserError (or Lightning configuration error) behind ``err``, if any."""
    return next((e for e in _chain(err) if isinstance(e, (UserError, MisconfigurationException)) or _setting(e)), None)


def _setting(err: BaseException) -> bool:
    return isinstance(err, ValueError) and str(err).strip().startswith(LIGHTNING_SETTING_ERRORS)


def _file_system_error_in(err: BaseException) -> OSError | None:
    """An OSError of a kind the user fixes (:data:`FILE_SYSTEM_FIXES`) naming its file, behind ``err``, if any."""
    return next(
        (e for e in _chain(err) if isinstance(e, OSError) and e.errno in FILE_SYSTEM_FIXES and e.filename), None
    )


def print_paragraph(label: str, text: str) -> None:
    """One wrapped paragraph on stderr, set apart from the log around it."""
    print(
        f"\n{label}: {textwrap.fill(text, width=100, break_on_hyphens=False, break_long_words=False)}\n",
        file=sys.stderr,
        flush=True,
    )


def report_user_errors(fn: F) -> F:
    """Turn a user mistake raised by ``fn`` into a short message on stderr and exit status 2.

    A file-system error of a kind the user fixes (a full disk, no permission, a folder
    where a file should be), wherever it is raised, is such a mistake too.

    A run stopped by a signal (:class:`RunStopped`) exits with :data:`EXIT_STOPPED`.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RunStopped as stop:
            if rank_zero_only.rank == 0:  # every DDP rank stops the same way; one says so
                print_paragraph(
                    "Stopped",
                    f"{stop.signal_name} received; training stopped after optimizer step {stop.step} and saved"
                    f" {stop.checkpoint}. Continue with the same command plus ckpt_path=last (and the same"
                    " hydra.run.dir).",
                )
            sys.exit(EXIT_STOPPED)
        except Exception as err:
            cause, file_system = _user_error_in(err), _file_system_error_in(err)
            if cause is not None:
                prefix = "" if isinstance(cause, UserError) else "Lightning rejected the trainer settings (trainer.*): "
                print_paragraph("Error", prefix + str(cause))
            elif file_system is not None:  # wherever a command, Lightning or a logger writes
                print_paragraph("Error", file_system_problem(file_system))
            else:
                raise
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
