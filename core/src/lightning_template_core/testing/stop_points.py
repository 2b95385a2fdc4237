"""Callbacks a test adds to a real `fit` process (``+callbacks.<name>._target_=<this module>.<Name>``) to
meet a moment of the run exactly, where a signal timed from outside may land a step early or late."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback


class SignalAtStep(Callback):
    """Sends ``signal_name`` to its own process once, at the end of optimizer step ``step``. A callback of the
    config comes before those the run always adds, so the run's stop handler sees it at that step.

    ``rank``: only that DDP rank's process. ``from_scratch_only``: not in a run that continues from a checkpoint
    (a launcher that restarts the same command line would meet the same step again).
    """

    def __init__(
        self, step: int, signal_name: str = "SIGTERM", rank: int | None = None, from_scratch_only: bool = False
    ) -> None:
        self.step, self.signum, self.rank, self.from_scratch_only = (
            step,
            signal.Signals[signal_name],
            rank,
            from_scratch_only,
        )
        self._armed = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._armed = self.rank in (None, trainer.global_rank) and not (self.from_scratch_only and trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step and self._armed:
            self._armed = False
            os.kill(os.getpid(), self.signum)


class HoldBeforeTraining(Callback):
    """Waits at the start of training, before the run's own training handlers take the stop signals over (it
    comes before them), with Lightning set up and its signal handlers in place: a test signals it there."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print("Holding before training", flush=True)
        time.sleep(600)


class SignalAtSave(Callback):
    """Sends ``signal_name`` to its own process as it writes its ``n``-th checkpoint (before the file exists):
    a SIGKILL there is a kill between two writes."""

    def __init__(self, n: int, signal_name: str = "SIGKILL") -> None:
        self.n, self.signum, self._saves = n, signal.Signals[signal_name], 0

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._saves += 1
        if self._saves == self.n:
            os.kill(os.getpid(), self.signum)


class PauseAfterValidation(Callback):
    """Waits ``seconds`` after each validation of ``fit``: a run of the fastest task, done in a fraction of a
    second, lasts long enough for a test that acts on its validations (one read every 0.2 s)."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            time.sleep(self.seconds)
