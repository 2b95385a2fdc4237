"""Stop signals from the first moment of a command's process, before its training (and its handlers) start.

A command spends seconds importing torch and Lightning and setting up before training,
where ``StopOnSignal`` takes over (and after it, while testing). Python's default would end
the process on SIGTERM or SIGUSR1 with no word and status 143/138, and show a traceback
on Ctrl-C. From the package's first import in a process started as one of the commands
(``fit ...``, ``python -m <package>.fit ...``), a stop signal outside training ends it at
once with the documented status 75 and one line. Nothing of the run needs saving then:
no optimizer step ran since the last checkpoint, the run's files are written once training
starts, and the OS drops the run directory's lock. Standard library only: it runs before
the heavy imports.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from pathlib import Path
from types import FrameType

# sysexits' EX_TEMPFAIL, "try again later": the run stopped on a signal and can be run again
EXIT_STOPPED = 75
COMMANDS = ("fit", "tune", "evaluate", "predict", "generate", "export")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
PACKAGE = __name__.rsplit(".", 1)[0]


def started_as_a_command(argv: list[str]) -> bool:
    """Whether ``argv`` (the interpreter's own, ``sys.orig_argv``) runs one of the commands."""
    modules = {f"{PACKAGE}.{command}" for command in COMMANDS}
    as_module = any(flag == "-m" and module in modules for flag, module in itertools.pairwise(argv))
    script = next((argument for argument in argv[1:] if not argument.startswith("-")), "")
    return as_module or Path(script).name in COMMANDS


def _stop_now(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    sys.stderr.write(
        f"\nStopped: {name} received while no training step was running, so there was nothing to save. Run the"
        " same command again (with ckpt_path=last, a run continues from its newest checkpoint).\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_STOPPED)  # at once, even in the middle of an import


def install() -> None:
    """Handle the stop signals outside training, where this process runs a command (the main thread only)."""
    if started_as_a_command(getattr(sys, "orig_argv", [])):
        for signum in STOP_SIGNALS:
            signal.signal(signum, _stop_now)
