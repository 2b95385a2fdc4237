"""Resuming from a checkpoint written at the validation that ends an epoch, when ``max_steps`` is set.

Such a checkpoint (``last.ckpt`` and the best one are written there) holds the epoch
processed but not yet completed. Without ``max_steps`` Lightning (2.6) resumes it as a
finished epoch and starts the next one. With ``max_steps`` it marks every load as a
restart, takes the epoch's end as still ahead, runs an empty epoch to reach it, and so
counts one epoch twice: the run stops at ``max_epochs`` a whole epoch early, and what
depends on the epoch number (the sampler's order, epoch-interval schedules) runs one
ahead. This fit loop resumes that checkpoint as Lightning does without ``max_steps``.
"""

from __future__ import annotations

import lightning.pytorch as L
from lightning.pytorch.loops.fit_loop import _FitLoop
from lightning.pytorch.loops.loop import _Loop


class EpochEndResumingFitLoop(_FitLoop):
    """Lightning's fit loop, but a checkpoint of an ended epoch is not a restart inside it."""

    def _loaded_an_ended_epoch(self) -> bool:
        epochs = self.epoch_progress.total
        ended = epochs.ready == epochs.started == epochs.processed == epochs.completed + 1
        validated = self.epoch_loop.val_loop.batch_progress.is_last_batch
        return ended and self.epoch_loop.batch_progress.is_last_batch and validated

    def _set_restarting(self, restarting: bool) -> None:
        if restarting and self._loaded_an_ended_epoch():
            _Loop.restarting.fset(self, False)  # the next epoch starts afresh, as without max_steps
            return
        _FitLoop.restarting.fset(self, restarting)

    restarting = property(_Loop.restarting.fget, _set_restarting)


def use_epoch_end_resuming_loop(trainer: L.Trainer) -> None:
    """Give ``trainer`` the fit loop above, keeping its epoch loop (and its step limits)."""
    old = trainer.fit_loop
    loop = EpochEndResumingFitLoop(trainer, min_epochs=old.min_epochs, max_epochs=old.max_epochs)
    loop.epoch_loop = old.epoch_loop
    trainer.fit_loop = loop
