"""User mistakes reported as one paragraph, without a traceback."""

from __future__ import annotations

import functools
import sys
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from lightning_template.stop_before_training import EXIT_STOPPED

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


def _user_error_in(err: BaseException) -> BaseException | None:
    """The UserError (or Lightning configuration error) behind ``err``, if any.

    Hydra's ``instantiate`` wraps what a constructor raises, so look down the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, (UserError, MisconfigurationException)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def print_paragraph(label: str, text: str) -> None:
    """One wrapped paragraph on stderr, set apart from the log around it."""
    print(
        f"\n{label}: {textwrap.fill(text, width=100, break_on_hyphens=False, break_long_words=False)}\n",
        file=sys.stderr,
        flush=True,
    )


def report_user_errors(fn: F) -> F:
    """Turn a user mistake raised by ``fn`` into a short message on stderr and exit status 2.

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
            cause = _user_error_in(err)
            if cause is None:
                raise
            prefix = "" if isinstance(cause, UserError) else "Lightning rejected the trainer settings: "
            print_paragraph("Error", prefix + str(cause))
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
