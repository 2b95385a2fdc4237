"""What every task's LightningModule shares: optimizers from config, the global-mean loss,
and the random-number state that an exact resume needs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from torch.optim import Optimizer

from lightning_template.batching.loss import global_mean_loss
from lightning_template.errors import UserError

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], Optimizer]


def gather_from_ranks(obj: Any) -> list[Any]:
    """``obj`` from every rank (just ``[obj]`` outside DDP)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def this_rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def this_ranks_entry(per_rank: list[Any] | None, world_size: int, what: str, consequence: str) -> Any | None:
    """This rank's entry of a per-rank list saved in a checkpoint by :func:`gather_from_ranks`.

    None when there is none, or (with a warning saying ``consequence``) when the
    checkpoint was written by a run with another number of ranks.
    """
    if per_rank is None:
        return None
    if len(per_rank) != world_size:
        rank_zero_warn(
            f"The checkpoint holds {what} of {len(per_rank)} rank(s) and this run has {world_size}: {consequence}."
        )
        return None
    return per_rank[this_rank()]


def check_ranks_agree(learning_rates_by_rank: list[list[float]]) -> None:
    """Refuse to train when DDP ranks were configured with different learning rates.

    Each rank composes its own config; launched by Hydra's ``--multirun`` (or a sweeper)
    under DDP, the ranks can hold different trials' settings and would silently average
    the gradients of different experiments.
    """
    if any(rates != learning_rates_by_rank[0] for rates in learning_rates_by_rank):
        by_rank = ", ".join(f"rank {r}: {rates}" for r, rates in enumerate(learning_rates_by_rank))
        raise UserError(
            f"The DDP ranks were started with different learning rates ({by_rank}): they hold different configs,"
            " as happens when Hydra's --multirun (or a Hydra sweeper) launches a DDP run. Start one fit process"
            " per configuration (the sweep command does), or use trainer.strategy=ddp_spawn."
        )


class GlobalBatchModule(L.LightningModule):
    """Base LightningModule for tasks trained on global batches.

    ``optimizer`` and ``scheduler`` are partials from the config (``_partial_: true``),
    bound here to the parameters and, where the scheduler takes ``total_steps``, to
    the number of optimizer steps Lightning expects. Checkpoints carry each rank's
    torch RNG state, restored just before the first batch after a resume, so dropout
    continues exactly as if the run had not stopped.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "step",
        scheduler_monitor: str | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self._rng_states_to_restore: list[dict[str, Any]] | None = None

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = {"scheduler": self.scheduler_factory(optimizer, **kwargs), "interval": self.scheduler_interval}
        if self.scheduler_monitor:
            # not strict: a run stopped by max_steps mid-epoch ends without the validation it monitors
            scheduler.update(monitor=self.scheduler_monitor, strict=False)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_train_start(self) -> None:
        # the LR each group was configured with, before any schedule multiplies it
        rates = [g.get("initial_lr", g["lr"]) for opt in self.trainer.optimizers for g in opt.param_groups]
        by_rank = gather_from_ranks(rates)
        check_ranks_agree(by_rank)
        if len(by_rank) > 1:
            rank_zero_info(f"Learning rate {', '.join(f'{r:.6g}' for r in rates)} on all {len(by_rank)} ranks")

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # the LR each step really used, after any schedule or scaling
        self.log("train/lr", optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)

    def global_mean(self, loss_sum: Tensor, items_in_global_batch: float) -> Tensor:
        """The micro-batch loss to return from ``training_step`` (see :func:`global_mean_loss`)."""
        return global_mean_loss(
            loss_sum, items_in_global_batch, self.trainer.accumulate_grad_batches, self.trainer.world_size
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["rng_states"] = gather_from_ranks(state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_states_to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        states, self._rng_states_to_restore = self._rng_states_to_restore, None
        state = this_ranks_entry(
            states, self.trainer.world_size, "RNG states", "random draws (dropout) will not continue exactly"
        )
        if state is None:
            return
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
