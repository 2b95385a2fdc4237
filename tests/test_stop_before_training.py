"""Which processes handle stop signals from their start: those started as a command, never a library user."""

from __future__ import annotations

import signal

import pytest

from lightning_template import stop_before_training
from lightning_template.stop_before_training import PACKAGE, started_as_a_command


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/venv/bin/python", "/venv/bin/fit", "seed=1"], True),
        (["python", "-m", f"{PACKAGE}.fit", "trainer=ddp_cpu"], True),
        (["python", "-u", "-m", f"{PACKAGE}.evaluate", "ckpt_path=x"], True),
        (["python", "-m", "pytest", "-n", "2"], False),
        (["python", "-m", f"{PACKAGE}.sweep", "my_sweep"], False),  # the sweep's trials are fit processes of their own
        (["python", "my_script.py"], False),
        (["python", "-c", "import lightning_template"], False),
        ([], False),
    ],
)
def test_only_a_command_line_of_the_commands_counts(argv, expected):
    assert started_as_a_command(argv) is expected


def test_importing_the_package_leaves_this_process_signals_alone():
    handlers = {signal.getsignal(signum) for signum in stop_before_training.STOP_SIGNALS}
    assert stop_before_training._stop_now not in handlers
