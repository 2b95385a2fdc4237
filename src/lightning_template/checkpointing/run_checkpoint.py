"""The run's checkpoints: the best ones by ``monitor``, and a ``last.ckpt`` that a crash can resume from."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn


def at_step_boundary(trainer: L.Trainer) -> bool:
    """Whether the micro-batches trained so far end an accumulation window (the optimizer just stepped)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.ready % trainer.accumulate_grad_batches == 0


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after the current training batch.

    A checkpoint written before that validation must not be used: resumed from it,
    Lightning takes the validation as done and skips it.
    """
    fit_loop = trainer.fit_loop
    return fit_loop._data_fetcher is not None and fit_loop.epoch_loop._should_check_val_fx(fit_loop._data_fetcher)


def epoch_cut_short(trainer: L.Trainer) -> bool:
    """Whether training stops before the end of the current epoch (``max_steps``, a stop signal)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.completed < trainer.num_training_batches


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, changed where it loses a resume point or the best checkpoint.

    * ``every_n_train_steps=N`` writes ``last.ckpt`` at every N-th optimizer step from
      step N on, whatever ``monitor`` says (Lightning defers every save until the
      monitored metric is logged, so a crash before the first validation left nothing).
      At those steps the top-k files are written only when ``monitor`` is null: a
      monitored value there would be the stale one of an earlier validation.
    * ``last.ckpt`` is also written at the step that reaches ``max_steps``, recording the
      true mid-epoch position.
    * These resume points do not use up the step's save: a validation at the same step
      still ranks the top-k (Lightning skips every save at a step it already saved at,
      so a validation at the final step never became the best checkpoint). When a
      validation follows the step, the resume point waits for its end: Lightning skips
      a validation it finds due right after the checkpointed step.
    * With ``every_n_train_steps`` and a ``monitor``, the top-k are still ranked at every
      validation (Lightning turns that off when ``every_n_train_steps`` is set).
    * Nothing is saved at the end of an epoch cut short (Lightning would record the
      epoch as finished, and a resume would skip its rest), nor inside an accumulation
      window (a half-accumulated gradient is not in a checkpoint).
    """

    def __init__(self, *args: Any, enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, enable_version_counter=enable_version_counter, **kwargs)
        if self._every_n_train_steps >= 1 and self.monitor is not None:
            # Lightning then ranks the top-k only at those steps, on a stale metric, and never at a
            # validation: no best checkpoint at all, and the test ran on the last weights
            self._every_n_epochs = 1
        # a save waiting for the validation that follows its step: None, or whether it is a periodic one
        self._due_after_validation: bool | None = None
        self._last_written_at: int | None = None  # the step of the newest last.ckpt

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._should_skip_saving_checkpoint(trainer) or not at_step_boundary(trainer):
            return
        periodic = self._every_n_train_steps >= 1 and trainer.global_step % self._every_n_train_steps == 0
        final = 0 < trainer.max_steps <= trainer.global_step
        if not (periodic or final):
            return
        if validation_follows(trainer):
            self._due_after_validation = periodic
        else:
            self._save_step(trainer, periodic)

    def _save_step(self, trainer: L.Trainer, periodic: bool) -> None:
        if periodic and self.monitor is None:
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
        self.save_resume_point(trainer)

    def save_resume_point(self, trainer: L.Trainer) -> str:
        """Write ``last.ckpt`` now (unless written at this step), leaving the step's top-k to a validation.

        Returns the checkpoint's path.
        """
        path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        if self._last_written_at != trainer.global_step:
            saved_at = self._last_global_step_saved
            if self.save_last:
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            else:
                self._save_checkpoint(trainer, path)
                self._last_written_at = trainer.global_step
            self._last_global_step_saved = saved_at
        return self.last_model_path or path

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_at = trainer.global_step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not at_step_boundary(trainer):
            rank_zero_warn(
                "No checkpoint at this validation: it falls inside an accumulation window (set"
                " trainer.val_check_interval to a multiple of the accumulation to checkpoint there)."
            )
            return
        super().on_validation_end(trainer, pl_module)
        if self._due_after_validation is not None and not trainer.sanity_checking:
            periodic, self._due_after_validation = self._due_after_validation, None
            self._save_step(trainer, periodic)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not epoch_cut_short(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """``last.ckpt`` holds the final state (Lightning leaves it at the last N-step save)."""
        if trainer.fast_dev_run or epoch_cut_short(trainer):
            return
        if self._last_written_at != trainer.global_step:
            self.save_resume_point(trainer)
