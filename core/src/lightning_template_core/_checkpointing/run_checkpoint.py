"""The run's checkpoints: the best ones by ``monitor``, and a ``last.ckpt`` that a crash can resume from."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_template_core._files.atomic import atomic_write
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)


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


def epoch_done(trainer: L.Trainer) -> bool:
    """Whether every training batch of the current epoch has run (the epoch's end may still be ahead)."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.ready >= trainer.num_training_batches


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
      true mid-epoch position, and at every validation (Lightning 2.6 writes it there only
      where a top-k file was saved: a validation that did not improve left it behind).
    * These resume points do not use up the step's save: a validation at the same step
      still ranks the top-k (Lightning skips every save at a step it already saved at,
      so a validation at the final step never became the best checkpoint). When a
      validation follows the step, the resume point waits for its end: Lightning skips
      a validation it finds due right after the checkpointed step. When Lightning ranks
      that validation at the end of its epoch (one validation per epoch), the resume
      point waits for the ranking: resumed from a point written between the two, a run
      starts the next epoch and the ranking is lost.
    * A validation that ends an epoch is ranked, and its files written, at the epoch's
      end, whatever the validation interval (Lightning does so only for one validation
      per epoch): every checkpoint of an epoch's end is then written after the epoch's
      end-of-epoch hooks, which a run resumed from it does not run again.
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
        self._loaded_at: int | None = None  # the step of the checkpoint this attempt continued from
        self._validated_epoch_end_at: int | None = None  # the step of the newest validation that ended an epoch

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

    def _should_save_on_train_epoch_end(self, trainer: L.Trainer) -> bool:
        lightning_would = super()._should_save_on_train_epoch_end(trainer)
        if lightning_would or self._save_on_train_epoch_end is not None:  # an explicit setting is kept
            return lightning_would
        return self._validated_epoch_end_at == trainer.global_step and epoch_done(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not at_step_boundary(trainer):
            log.warning(
                "No checkpoint at this validation: it falls inside an accumulation window (set"
                " trainer.val_check_interval to a multiple of the accumulation to checkpoint there)."
            )
            return
        if not trainer.sanity_checking and epoch_done(trainer):
            self._validated_epoch_end_at = trainer.global_step  # ranked at the epoch's end
        super().on_validation_end(trainer, pl_module)
        if not self._ranks_at_the_epoch_end(trainer):
            self._resume_point_at_every_validation(trainer)
            self._save_due_step(trainer)

    def _resume_point_at_every_validation(self, trainer: L.Trainer) -> None:
        """Lightning 2.6 writes ``last.ckpt`` at a validation only where a top-k file was saved there: a validation
        that did not improve left the resume point at an older step."""
        skip = bool(trainer.fast_dev_run) or trainer.sanity_checking or self._last_written_at == trainer.global_step
        if self.save_last and not skip:
            self.write_resume_point_after_ranking()

    def write_resume_point_after_ranking(self) -> None:
        """Write ``last.ckpt`` once the validation that is ending is ranked (at its end, or its epoch's)."""
        if self._due_after_validation is None:
            self._due_after_validation = False  # not a periodic save: no top-k file of its own

    def _ranks_at_the_epoch_end(self, trainer: L.Trainer) -> bool:
        """Whether Lightning ranks the validation that just ran at the end of its epoch, not now."""
        return not trainer.sanity_checking and epoch_done(trainer) and self._should_save_on_train_epoch_end(trainer)

    def _save_due_step(self, trainer: L.Trainer) -> None:
        if self._due_after_validation is not None and not trainer.sanity_checking:
            periodic, self._due_after_validation = self._due_after_validation, None
            self._save_step(trainer, periodic)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not epoch_cut_short(trainer):
            super().on_train_epoch_end(trainer, pl_module)
            if self._should_save_on_train_epoch_end(trainer):  # the epoch's validation was ranked here
                self._resume_point_at_every_validation(trainer)
        self._save_due_step(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """``last.ckpt`` holds the final state (Lightning leaves it at the last N-step save)."""
        if trainer.fast_dev_run or epoch_cut_short(trainer):
            return
        if self._last_written_at != trainer.global_step:
            self.save_resume_point(trainer)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._loaded_at = checkpoint.get("global_step")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A run that continued from a checkpoint and had nothing left to train (Lightning then runs no training
        hook) ends in that checkpoint's state: ``last.ckpt`` becomes a copy of it. (Continued from a best
        checkpoint newer than ``last.ckpt``, which a kill between their two writes leaves, the run's last
        checkpoint was the older one.)"""
        if self._loaded_at != trainer.global_step or self._last_written_at == trainer.global_step:
            return
        path, resumed_from = Path(self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)), Path(trainer.ckpt_path)
        if trainer.is_global_zero and resumed_from.resolve() != path.resolve():
            with resumed_from.open("rb") as source:
                atomic_write(path, lambda target: shutil.copyfileobj(source, target))
        self.last_model_path, self._last_written_at = str(path), trainer.global_step
