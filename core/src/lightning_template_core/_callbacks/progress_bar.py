"""A progress bar that never makes a training step wait on the device.

Lightning turns every metric logged with ``prog_bar=True`` into a Python number at the end
of every batch (``.item()``), and its Rich bar asks for them at every batch: with a GPU,
each is a wait for the device. So the tasks log their step metrics without ``prog_bar``,
and this bar shows the chosen ones (``train/loss``) as the loggers last received them,
read back only at the steps that log (``trainer.log_every_n_steps``).

Lightning's Rich bar also redraws itself after every training batch (its ``refresh_rate``
only thins the counter's updates), a fifth of a millisecond of host time per batch that a
short step on a GPU waits for. This one redraws at most every ``redraw_seconds``, at the
steps that log and at the end of the epoch: as smooth to the eye, nearly free per batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import RichProgressBar

from lightning_template_core._training.logging_steps import logs_this_step


class LoggedMetricsBar(RichProgressBar):
    """Lightning's Rich bar, with ``shown`` step metrics refreshed at logging steps only."""

    def __init__(self, shown: Sequence[str] = ("train/loss",), redraw_seconds: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown = tuple(shown)
        self.redraw_seconds = redraw_seconds
        self._values: dict[str, float] = {}
        self._drawn = -math.inf

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        due = now - self._drawn >= self.redraw_seconds or logs_this_step(trainer)
        if due or batch_idx + 1 == self.total_train_batches or self.train_progress_bar_id is None:
            self._drawn = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        if trainer.training and logs_this_step(trainer):
            logged = trainer.logged_metrics
            self._values = {name: float(logged[name]) for name in self.shown if name in logged}
        return {**super().get_metrics(trainer, pl_module), **self._values}
