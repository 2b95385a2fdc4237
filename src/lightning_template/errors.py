"""User mistakes reported as one paragraph, without a traceback."""

from __future__ import annotations

import functools
import sys
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

from lightning.fabric.utilities.exceptions import MisconfigurationException

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the config, the data or a checkpoint that the user can fix.

    The message names the setting at fault and says how to fix it; commands print it
    as-is and exit with status 2 instead of showing a traceback.
    """


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


def report_user_errors(fn: F) -> F:
    """Turn a user mistake raised by ``fn`` into a short message on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            cause = _user_error_in(err)
            if cause is None:
                raise
            prefix = "" if isinstance(cause, UserError) else "Lightning rejected the trainer settings: "
            message = textwrap.fill(prefix + str(cause), width=100, break_on_hyphens=False)
            print(f"\nError: {message}\n", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]
