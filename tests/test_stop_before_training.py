"""Stop signals from a command's first moment: the console scripts handle them, a library user's process never."""

from __future__ import annotations

import signal
import subprocess
import sys

from lightning_template_core import _stop_before_training

IMPORT_AND_REPORT = """
import signal, sys
import lightning_template_core, lightning_template_core.fit, lightning_template
from lightning_template_core import _stop_before_training
handlers = {signal.getsignal(signum) for signum in _stop_before_training.STOP_SIGNALS}
print(_stop_before_training._stop_now in handlers)
"""


def test_importing_the_packages_leaves_a_process_signals_alone():
    done = subprocess.run([sys.executable, "-c", IMPORT_AND_REPORT], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_console_script_handles_stop_signals_before_it_imports_the_command(monkeypatch):
    from lightning_template_core import _console

    installed = []
    monkeypatch.setattr(_stop_before_training, "install", lambda: installed.append(True))
    monkeypatch.setattr(_console.importlib, "import_module", lambda name: installed.append(name) or _Command)
    assert _console.fit() == "ran"
    assert installed == [True, "lightning_template_core.fit"]
    installed.clear()
    _console.sweep()  # the sweep handles its own signals (its trials are fit processes)
    assert installed == ["lightning_template_core.sweep.cli"]


def test_a_stop_signal_before_training_ends_the_command_with_status_75():
    script = "from lightning_template_core import _stop_before_training as s; s.install(); import os, signal, time;"
    script += " os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == _stop_before_training.EXIT_STOPPED
    assert "Stopped: SIGTERM received while no training step was running" in done.stderr


class _Command:
    @staticmethod
    def main() -> str:
        return "ran"


assert signal.SIGTERM in _stop_before_training.STOP_SIGNALS
