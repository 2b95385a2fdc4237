"""What every task's LightningModule shares: its data description, optimisation from config, the global-mean loss,
and one evaluation path for validation and test."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import lightning.pytorch as L
import torch
from torch import Tensor
from torch.optim import Optimizer
from torchmetrics import Metric

from lightning_template_core._batching.data_description import DataDescription
from lightning_template_core._batching.loss import global_mean_loss
from lightning_template_core._errors import UserError
from lightning_template_core._training.logging_steps import logs_this_step

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], Optimizer]


class GlobalBatchModule(L.LightningModule):
    """Base LightningModule for tasks trained on global batches.

    ``data`` is what the task's DataModule says of its data (:meth:`describe`); it is
    saved with the hyperparameters, as plain data. ``optimizer`` and ``scheduler`` are
    partials from the config (``_partial_: true``),
    bound here to the parameters and, where the scheduler takes ``total_steps``, to
    the number of optimizer steps Lightning expects (the schedule's horizon). The
    horizon is saved in checkpoints; a resume whose ``trainer.max_steps`` or
    ``max_epochs`` gives another horizon is refused, since the schedule would jump.
    """

    # logged while training (a task adds its own): a monitor under train/ is checked against them
    TRAINING_METRICS: ClassVar[tuple[str, ...]] = ("train/lr",)

    def __init__(
        self,
        data: DataDescription | Mapping[str, Any],
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "step",
        scheduler_monitor: str | None = None,
    ) -> None:
        super().__init__()
        self.data = DataDescription.of(data)
        # the task's own arguments too; the network and optimisation partials are in the run's config
        self.save_hyperparameters(ignore=["data", "net", "optimizer", "scheduler"], logger=False)
        self.hparams["data"] = self.data.as_dict()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.schedule_horizon: int | None = None
        self._checkpoint_horizon: int | None = None
        self._monitored: set[str] = set()  # step metrics logged at every step (on_train_start)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["total_steps"] = self.schedule_horizon = self._checked_horizon()
        scheduler = {"scheduler": self.scheduler_factory(optimizer, **kwargs), "interval": self.scheduler_interval}
        if self.scheduler_monitor:
            # not strict: a run stopped by max_steps mid-epoch ends without the validation it monitors
            scheduler.update(monitor=self.scheduler_monitor, strict=False)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def _checked_horizon(self) -> int:
        horizon = int(self.trainer.estimated_stepping_batches)
        if self._checkpoint_horizon not in (None, horizon):
            raise UserError(
                f"The checkpoint's learning-rate schedule spans {self._checkpoint_horizon} optimizer steps and this"
                f" run's trainer.max_steps={self.trainer.max_steps} / trainer.max_epochs={self.trainer.max_epochs}"
                f" give {horizon}: resuming would make the schedule jump. Resume with the trainer.max_steps and"
                " trainer.max_epochs the run started with (a run that continues keeps its schedule), or start a"
                " new run."
            )
        return horizon

    def log_step_metric(self, name: str, value: Tensor | float, **kwargs: Any) -> None:
        """Log a training step's value (``on_step`` only) at the steps the loggers write it, and at every step
        where a callback or the schedule monitors it.

        Lightning's ``self.log`` costs more host time than a small model's forward pass (about
        0.7 ms a call on a CPU: it moves its record of the metric to the value's device through a
        generic, copying path), and a host number logged becomes a new device tensor; the loggers
        and the progress bar only read step values at the steps that log, so they see the same.
        """
        if name in self._monitored or logs_this_step(self.trainer):
            self.log(name, value, on_step=True, on_epoch=False, **kwargs)

    def on_train_start(self) -> None:
        # what a checkpoint, early stopping or the schedule compares is logged at every step, as they read it
        monitors = (getattr(callback, "monitor", None) for callback in self.trainer.callbacks)
        self._monitored = {name for name in (*monitors, self.scheduler_monitor) if isinstance(name, str)}

    def log_epoch_metric(self, name: str, metric: Metric) -> None:
        """Log ``metric`` (updated at every step) once, at the end of the epoch, and reset it.

        Logged at every step, as Lightning's examples do, a torchmetrics Metric costs what any
        ``self.log`` costs (:meth:`log_step_metric`) at every step; its value at the epoch's end
        is the same. ``compute`` gathers the ranks' states, so every rank logs the same number.
        """
        if metric.update_called:
            self.log(name, metric.compute(), on_step=False, on_epoch=True, sync_dist=True, reduce_fx="max")
        metric.reset()

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # the LR each step really used, after any schedule or scaling
        self.log_step_metric("train/lr", optimizer.param_groups[0]["lr"])

    def global_mean(self, loss_sum: Tensor, items_in_global_batch: float) -> Tensor:
        """The micro-batch loss to return from ``training_step`` (see :func:`global_mean_loss`)."""
        return global_mean_loss(
            loss_sum, items_in_global_batch, self.trainer.accumulate_grad_batches, self.trainer.world_size
        )

    # Validation and test run the same code on their own metrics: a task implements ``evaluate``
    # (one batch of ``split``) and, for metrics computed once the split is done, ``log_evaluation``.

    def evaluate(self, batch: Any, split: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement evaluate(batch, split)")

    def log_evaluation(self, split: str) -> None:
        """Log what ``split`` measured once its last batch is in (metrics logged per batch need nothing here)."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self.log_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self.log_evaluation("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["schedule_horizon"] = self.schedule_horizon

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._checkpoint_horizon = checkpoint.get("schedule_horizon")
