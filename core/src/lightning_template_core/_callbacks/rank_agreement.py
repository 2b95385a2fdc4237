"""Refuse a DDP run whose ranks were given different settings."""

from __future__ import annotations

import lightning.pytorch as L

from lightning_template_core._batching.distributed import gather_from_ranks
from lightning_template_core._errors import UserError
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)


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


class RanksAgree(L.Callback):
    """At the start of training, compare the learning rates every rank was configured with."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the LR each group was configured with, before any schedule multiplies it
        rates = [g.get("initial_lr", g["lr"]) for opt in trainer.optimizers for g in opt.param_groups]
        by_rank = gather_from_ranks(rates)
        check_ranks_agree(by_rank)
        if len(by_rank) > 1:
            log.info(f"Learning rate {', '.join(f'{r:.6g}' for r in rates)} on all {len(by_rank)} ranks")
