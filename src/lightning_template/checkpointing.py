"""ModelCheckpoint whose ``last.ckpt`` is the state at the final step, resumable mid-epoch."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint


class FinalStepCheckpoint(ModelCheckpoint):
    """Also writes ``last.ckpt`` right after the optimizer step that reaches ``max_steps``.

    Lightning's ModelCheckpoint writes ``last.ckpt`` only together with a top-k save
    (at validation) or once at the end of training, and a checkpoint written at the
    end of training marks the epoch finished even when ``max_steps`` stopped it
    halfway: resuming from it skips the rest of that epoch. Saving at the batch end of
    the final step records the true mid-epoch position instead.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        reached_max_steps = 0 < trainer.max_steps <= trainer.global_step
        if self.save_last and reached_max_steps and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
