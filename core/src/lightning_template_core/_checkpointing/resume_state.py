"""What an exact resume needs beyond Lightning's own checkpoint: RNG streams, and the layout it was written on."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_template_core._batching.distributed import gather_from_ranks, this_rank
from lightning_template_core._checkpointing.run_checkpoint import epoch_done
from lightning_template_core._errors import UserError
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)

# Lightning's loop counters that count micro-batches (the rest count optimizer steps or epochs).
MICRO_BATCH_COUNTERS = ("epoch_loop.batch_progress",)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_end_ahead(trainer: L.Trainer) -> bool:
    """Whether the epoch's batches are all done but the fit loop has not finished the epoch yet."""
    epochs = trainer.fit_loop.epoch_progress.current
    return epoch_done(trainer) and epochs.completed < epochs.ready


def scalar_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The logged scalars a plateau scheduler may monitor, as plain floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if torch.as_tensor(v).numel() == 1}


def step_epoch_plateau_schedulers(trainer: L.Trainer, epoch: int, metrics: dict[str, float]) -> None:
    """The end-of-epoch step of ReduceLROnPlateau-like schedulers, as Lightning does it, with ``metrics``."""
    for config in trainer.lr_scheduler_configs:
        due = config.reduce_on_plateau and config.interval == "epoch" and (epoch + 1) % config.frequency == 0
        if due and config.monitor in metrics:
            config.scheduler.step(metrics[config.monitor])


def rescale_micro_batch_counters(loops: dict[str, Any], old_accumulate: int, new_accumulate: int) -> None:
    """Convert Lightning's micro-batch counts in ``loops`` from one accumulation to another, in place.

    Lightning decides when to step from its micro-batch count (``ready % accumulate``),
    so a run resumed with other accumulation must count as if it had always used it.
    The other counters (started, processed, completed) keep their distance to ``ready``:
    a checkpoint written at a batch's end has not counted that batch completed yet.
    """
    fit_loop = loops["fit_loop"]
    for key in MICRO_BATCH_COUNTERS:
        progress = fit_loop[key]
        for scope in ("total", "current"):
            counts = progress[scope]
            if counts["ready"] % old_accumulate:
                raise UserError(
                    "The checkpoint was written inside an accumulation window and cannot resume on another"
                    f" layout (it accumulated {old_accumulate} micro-batches, this run {new_accumulate})."
                    " Resume on the layout that wrote it, or from a checkpoint written at an optimizer step."
                )
            ready = counts["ready"] // old_accumulate * new_accumulate
            progress[scope] = {name: ready - (counts["ready"] - count) for name, count in counts.items()}


class ResumeState(Callback):
    """Saves each rank's RNG state and the batch layout; on resume, adapts to the new layout.

    The RNG states (dropout) are restored just before the first resumed batch, after
    everything Lightning does between loading the checkpoint and training.
    On another number of processes, per-process RNG streams cannot carry over: said
    once in the log (data order and augmentation are keyed per sample, so they do).
    Lightning's micro-batch counters are converted to the new accumulation.

    Epoch-end steps of plateau schedulers (ReduceLROnPlateau): Lightning skips that
    step at the end of an epoch it resumed in, and every checkpoint written at an epoch
    end (after its validation, or at ``on_train_epoch_end``) is written before it. So
    the checkpoint records through which epoch the step was taken and the metrics it
    needs; a resume takes a step that is owed, once. At the end of the epoch it resumed
    in, the step reads the metrics of the validations before the checkpoint (the run
    resumed without them) where no later validation replaced them.
    """

    def __init__(self) -> None:
        self._rng_state_to_restore: dict[str, Any] | None = None
        self._stepped_through = -1  # the last epoch whose end-of-epoch plateau step was taken
        self._owed_step: tuple[int, dict[str, float]] | None = None
        self._metrics_at_load: dict[str, float] = {}  # the checkpoint's, read by the resumed epoch's end

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = gather_from_ranks(_rng_state())
        checkpoint["batch_layout"] = {
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "world_size": trainer.world_size,
        }
        checkpoint["epoch_schedules"] = {
            "stepped_through": self._stepped_through,
            "epoch": trainer.current_epoch,
            "epoch_end_ahead": epoch_end_ahead(trainer),
            "metrics": scalar_metrics(trainer),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        schedules = checkpoint.get("epoch_schedules")
        if schedules is not None:
            self._stepped_through = schedules["stepped_through"]
            self._metrics_at_load = schedules["metrics"]
            if schedules["epoch_end_ahead"] and schedules["stepped_through"] < schedules["epoch"]:
                self._owed_step = (schedules["epoch"], schedules["metrics"])
        written_on = checkpoint.get("batch_layout")
        if written_on is None:
            return
        old_accumulate, old_world = written_on["accumulate_grad_batches"], written_on["world_size"]
        if old_accumulate != trainer.accumulate_grad_batches and "loops" in checkpoint:
            rescale_micro_batch_counters(checkpoint["loops"], old_accumulate, trainer.accumulate_grad_batches)
        if (old_accumulate, old_world) != (trainer.accumulate_grad_batches, trainer.world_size):
            log.info(
                f"Resuming on another layout: the checkpoint was written with {old_world} process(es) x accumulate"
                f" {old_accumulate}, this run has {trainer.world_size} x {trainer.accumulate_grad_batches}. The"
                " global batches continue unchanged."
            )
        states = checkpoint.get("rng_states") or []
        if len(states) == trainer.world_size:
            self._rng_state_to_restore = states[this_rank()]
        elif states:
            log.warning(
                f"The checkpoint holds the RNG streams of {len(states)} process(es) and this run has"
                f" {trainer.world_size}: random draws inside the model (dropout) continue from fresh streams, so"
                " weights will differ from an uninterrupted run unless dropout is 0."
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._owed_step is not None:
            epoch, metrics = self._owed_step
            step_epoch_plateau_schedulers(trainer, epoch, metrics)
            self._stepped_through, self._owed_step = epoch, None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stepped_through = max(self._stepped_through, trainer.current_epoch - 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # every finished epoch has had its end-of-epoch step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if trainer.fit_loop.restarting and epoch_done(trainer) and self._stepped_through < epoch:
            # Lightning skips this step in an epoch it resumed in
            step_epoch_plateau_schedulers(trainer, epoch, {**self._metrics_at_load, **scalar_metrics(trainer)})
            self._stepped_through = epoch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._rng_state_to_restore is not None:
            _set_rng_state(self._rng_state_to_restore)
            self._rng_state_to_restore = None
