"""Early stopping whose decision is part of the run: a run it stopped, continued from a checkpoint, stays stopped."""

from __future__ import annotations

import lightning.pytorch as L
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason


class RunEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping, whose stop survives a resume.

    Lightning checkpoints the count and the reason, but only acts on them at the next
    validation: a run continued from the checkpoint of the validation that stopped it (a
    SIGKILL during its last seconds, or ``ckpt_path=last`` on a finished run) trained on to
    that validation and ended elsewhere. Here the continued run ends where it is.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if self.stopping_reason is not EarlyStoppingReason.NOT_STOPPED:
            trainer.should_stop = True
