"""Stop signals from the first moment of a command's process, before its training (and its handlers) start.

A command spends seconds importing torch and Lightning and setting up before training,
where ``StopOnSignal`` takes over (and after it, while testing). Python's default would end
the process on SIGTERM or SIGUSR1 with no word and status 143/138, and show a traceback
on Ctrl-C. The console scripts (:mod:`lightning_template_core._console`) install these
handlers before they import anything heavy, and ``python -m lightning_template_core.<command>``
once its module is imported: a stop signal outside training ends the process at once with
the documented status 75 and one line. Nothing of the run needs saving then: no optimizer
step ran since the last checkpoint, the run's files are written once training starts, and
the OS drops the run directory's lock. Importing the package installs nothing. Standard
library only: it runs before the heavy imports.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

# sysexits' EX_TEMPFAIL, "try again later": the run stopped on a signal and can be run again
EXIT_STOPPED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def _stop_now(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    sys.stderr.write(
        f"\nStopped: {name} received while no training step was running, so there was nothing to save. Run the"
        " same command again (with ckpt_path=last, a run continues from its newest checkpoint).\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_STOPPED)  # at once, even in the middle of an import


def install() -> None:
    """Handle the stop signals outside training in this process (a command's; the main thread only)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_now)
