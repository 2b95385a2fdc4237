"""One sweep trial: a ``fit`` process of its own, watched through its monitor history.

A process per trial keeps DDP correct (every rank of a trial is started with the same
overrides, unlike Hydra's multirun under DDP) and isolates crashes and memory.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lightning_template_core import fit
from lightning_template_core._callbacks.monitor_history import history_path, metric_names, read_history

LOG_NAME = "fit.log"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# looked up here, not in the child between fork and exec, where only the call itself should run
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


class TrialCancelled(Exception):
    """The sweep was interrupted while the trial ran: its ``fit`` was stopped (and saved its state)."""


@dataclass
class TrialOutcome:
    returncode: int | None
    values: list[float] = field(default_factory=list)  # the metric at each validation, in order
    stopped: bool = False  # stopped early because ``on_value`` asked (pruned)

    @property
    def final(self) -> float | None:
        return self.values[-1] if self.values else None


def fit_command(overrides: list[str], run_dir: Path) -> list[str]:
    return [sys.executable, "-m", fit.__name__, *overrides, f"hydra.run.dir={run_dir.resolve()}"]


def metric_series(run_dir: Path, metric: str) -> list[float]:
    """``metric`` at each validation so far, from the run's monitor history (written whatever its loggers)."""
    return [float(line[metric]) for line in read_history(history_path(run_dir)) if metric in line]


def lr_used(run_dir: Path) -> float | None:
    """The learning rate the trial trained with (after ``lr_scaling``), as its monitor history recorded it."""
    return next((line["base_lr"] for line in read_history(history_path(run_dir)) if "base_lr" in line), None)


def logged_metrics(run_dir: Path) -> list[str]:
    """What the run's validations recorded: for a trial whose metric is missing, the names it could have meant."""
    return metric_names(read_history(history_path(run_dir)))


def failure_reason(run_dir: Path) -> str:
    """Why the trial's ``fit`` failed: its one-paragraph error, or the last line of its traceback."""
    text = (run_dir / LOG_NAME).read_text(errors="replace")
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    errors = [p for p in paragraphs if p.startswith("Error:")]
    if errors:
        return errors[-1][:500]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "(no output)"


def _stop(process: subprocess.Popen) -> None:
    """End the trial's process group (DDP ranks included): SIGTERM (fit saves its state), then SIGKILL after a
    grace period long enough to write a large model's checkpoint."""
    for sig, grace in ((signal.SIGTERM, 120), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _end_with_parent() -> None:
    """In the trial's process: a SIGTERM when the sweep worker dies, so a killed sweep leaves no orphan ``fit``.

    ``fit`` saves its state on SIGTERM, so the trial's retry continues from there.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def run_trial(
    overrides: list[str],
    run_dir: Path,
    metric: str,
    on_value: Callable[[int, float], bool],
    poll_seconds: float = 1.0,
    gpus: str | None = None,
    cancel: threading.Event | None = None,
) -> TrialOutcome:
    """Run ``fit`` with ``overrides`` in ``run_dir`` (its output appended to ``fit.log``) until it ends.

    Each new value of ``metric`` is passed to ``on_value(step, value)`` (step = the
    validation's index); when that returns True the run is stopped. ``gpus``: the
    trial's ``CUDA_VISIBLE_DEVICES``; ``cancel``: when set, the run is stopped and
    ``TrialCancelled`` raised.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome = TrialOutcome(returncode=None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    command = fit_command(overrides, run_dir)
    with (run_dir / LOG_NAME).open("a") as log:  # a retry's attempt follows the lost one's
        log.write(f"==> {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command[2:])}\n")
        log.flush()
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_end_with_parent,
        )
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    raise TrialCancelled
                try:
                    outcome.returncode = process.wait(timeout=poll_seconds)
                except subprocess.TimeoutExpired:
                    outcome.returncode = None
                for value in metric_series(run_dir, metric)[len(outcome.values) :]:
                    outcome.values.append(value)
                    if on_value(len(outcome.values) - 1, value) and outcome.returncode is None:
                        _stop(process)
                        outcome.stopped, outcome.returncode = True, process.returncode
                        return outcome
                if outcome.returncode is not None:
                    return outcome
        except BaseException:  # Ctrl-C or an error here: leave no trial running
            _stop(process)
            raise


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
