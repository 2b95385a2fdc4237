"""What an epoch's training metrics have accumulated, carried across a resume, so that a resumed epoch logs what
the run that never stopped logs at its end.

Lightning keeps none of it in a checkpoint: torchmetrics states are not part of the
weights, and ``self.log(..., on_epoch=True)`` sums live in the loop's result collection.
Resumed mid-epoch, an epoch-level metric covered only the batches after the resume; resumed
from a checkpoint written at an epoch's end (where ``last.ckpt`` and the best file are
written), Lightning goes on with the next epoch and the ended epoch's row was never logged
when the kill came before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Callback
from torchmetrics import Metric

from lightning_template_core._batching.distributed import gather_from_ranks, this_rank
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)

KEY = "epoch_metrics"


def _epoch_row_pending(trainer: L.Trainer) -> bool:
    """Whether the epoch has ended (its end-of-epoch hooks have run) and its row is not yet logged."""
    epochs = trainer.fit_loop.epoch_progress.current
    return epochs.processed == epochs.ready > epochs.completed


def _logged_metric_objects(results: dict[str, Any]) -> set[int]:
    """The torchmetrics objects logged into a Lightning result collection (it resets them at its epoch's end)."""
    return {id(item.value) for item in results.values() if not item.is_tensor}


def _module_metrics(pl_module: L.LightningModule) -> Iterator[tuple[str, Metric]]:
    return ((name, module) for name, module in pl_module.named_modules() if isinstance(module, Metric))


def _metric_state(metric: Metric) -> dict[str, Any]:
    states = {}
    for name in metric._defaults:
        value = getattr(metric, name)
        states[name] = [v.detach().cpu() for v in value] if isinstance(value, list) else value.detach().cpu()
    return {"states": states, "updates": metric._update_count}


def _on_device(states: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {name: [v.to(device) for v in s] if isinstance(s, list) else s.to(device) for name, s in states.items()}


def _set_metric_state(metric: Metric, saved: dict[str, Any]) -> None:
    for name, value in _on_device(saved["states"], metric.device).items():
        setattr(metric, name, value)
    metric._update_count, metric._computed = saved["updates"], None


def _merge_metric_states(metric: Metric, saved_per_rank: list[dict[str, Any]]) -> bool:
    """Put every rank's saved state into ``metric`` (this run has another number of processes); False where the
    metric's reductions cannot be merged."""
    metric.reset()
    try:
        for saved in reversed(saved_per_rank):  # torchmetrics puts the incoming list state first: rank order
            metric.merge_state(_on_device(saved["states"], metric.device))
            metric._update_count += saved["updates"]
    except (RuntimeError, TypeError, ValueError):
        metric.reset()
        return False
    metric._computed = None
    return True


def _logged_sums(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each tensor logged with ``on_epoch=True`` has accumulated in this epoch."""
    sums = {}
    for key, item in results.items():
        if item.is_tensor and item.meta.on_epoch and not item.has_reset:
            entry = {"value": item.value.detach().cpu()}
            if item.meta.is_mean_reduction:
                entry["size"] = item.cumulated_batch_size.detach().cpu()
            sums[key] = entry
    return sums


def _combined(saved_per_rank: list[dict[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    combined: dict[str, list[dict[str, Any]]] = {}
    for sums in saved_per_rank:
        for key, entry in sums.items():
            combined.setdefault(key, []).append(entry)
    return combined


def _add_logged_sums(item: Any, entries: list[dict[str, Any]]) -> None:
    """Add saved accumulations to a result Lightning has just started again for the resumed epoch."""
    for entry in entries:
        value = entry["value"].to(item.value.device, item.value.dtype)
        if item.meta.is_max_reduction:
            item.value = torch.maximum(item.value, value)
        elif item.meta.is_min_reduction:
            item.value = torch.minimum(item.value, value)
        else:
            item.value = item.value + value
        if "size" in entry:
            item.cumulated_batch_size = item.cumulated_batch_size + entry["size"].to(item.cumulated_batch_size.device)
    item._computed = None


class EpochMetrics(Callback):
    """Saves the epoch's training metric accumulations in every checkpoint and puts them back on resume.

    * torchmetrics ``Metric`` modules of the LightningModule: their states, per rank (on
      another number of processes, rank 0 takes all of them merged). Left out: metrics
      Lightning resets right after the moment of the checkpoint (those logged as objects in
      the validation, and in training when the epoch has ended).
    * ``self.log(..., on_epoch=True)`` values of the training hooks: their running sums,
      added back to the same keys once the resumed epoch has logged them again.
    * A checkpoint written at an epoch's end, after its end-of-epoch hooks: the epoch's row
      as the loggers would receive it, logged by the resumed run at the same step (the CSV
      log forgets a copy a killed attempt wrote, so the row is there once).
    """

    def __init__(self) -> None:
        self._loaded: dict[str, Any] | None = None
        self._sums_to_add: dict[str, list[dict[str, Any]]] = {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        epoch_loop = trainer.fit_loop.epoch_loop
        pending = _epoch_row_pending(trainer)
        reset_after = _logged_metric_objects(epoch_loop.val_loop._results)
        if pending:
            reset_after |= _logged_metric_objects(epoch_loop._results)
        metrics = {name: _metric_state(m) for name, m in _module_metrics(pl_module) if id(m) not in reset_after}
        row, step = None, epoch_loop._batches_that_stepped - 1  # where Lightning logs an epoch's row
        if pending:  # computed on every rank: a metric's value may gather all of them
            logged = epoch_loop._results.metrics(on_step=False)["log"]
            row = {name: float(value) for name, value in logged.items() if torch.as_tensor(value).numel() == 1}
        checkpoint[KEY] = {
            "metrics": gather_from_ranks(metrics),
            "logged_sums": gather_from_ranks({} if pending else _logged_sums(epoch_loop._results)),
            "row": None if row is None else {"values": row, "epoch": trainer.current_epoch, "step": step},
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._loaded = checkpoint.get(KEY)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # here, not at the start of training: a checkpoint of the last epoch's end has nothing left to train
        if self._loaded is not None and self._loaded["row"] is not None:
            self._log_ended_epoch(trainer, **self._loaded["row"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._loaded is None:
            return
        loaded, self._loaded = self._loaded, None
        self._restore_metrics(trainer, pl_module, loaded["metrics"])
        sums = loaded["logged_sums"]
        if len(sums) == trainer.world_size:
            self._sums_to_add = _combined([sums[this_rank()]])
        else:
            self._sums_to_add = _combined(sums) if trainer.is_global_zero else {}

    def _restore_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule, saved: list[dict[str, Any]]) -> None:
        unmerged = []
        for name, metric in _module_metrics(pl_module):
            if len(saved) == trainer.world_size:
                if name in saved[this_rank()]:
                    _set_metric_state(metric, saved[this_rank()][name])
            elif trainer.is_global_zero:
                states = [rank_states[name] for rank_states in saved if name in rank_states]
                if states and not _merge_metric_states(metric, states):
                    unmerged.append(name)
        if unmerged:
            log.warning(
                f"The checkpoint was written by {len(saved)} process(es) and this run has {trainer.world_size}: the"
                f" states of {', '.join(unmerged)} cannot be merged, so their values at the end of this epoch cover"
                " the batches after the resume only."
            )

    def _log_ended_epoch(self, trainer: L.Trainer, values: dict[str, float], epoch: int, step: int) -> None:
        """The row of the epoch the checkpoint ended, at the step Lightning logs it (the epoch's last)."""
        if not values or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if hasattr(logger, "forget_row"):
                logger.forget_row(step, set(values))
            logger.log_metrics({**values, "epoch": epoch}, step=step)
            logger.save()

    def _add_pending_sums(self, trainer: L.Trainer) -> None:
        if not self._sums_to_add:
            return
        results = trainer.fit_loop.epoch_loop._results
        for key in [key for key in self._sums_to_add if key in results]:
            _add_logged_sums(results[key], self._sums_to_add.pop(key))

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._add_pending_sums(trainer)  # what the resumed epoch's training_step logged again

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._add_pending_sums(trainer)  # what the hooks after training_step logged again

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sums_to_add = {}  # the resumed epoch is over: nothing carries into the next
