"""The word-level LSTM language model task, trained by truncated BPTT over carried hidden states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_template.tasks.lm.net import Hidden
from lightning_template.tasks.lm.streams import TokenWindow
from lightning_template_core import (
    DataDescription,
    ExactMean,
    GlobalBatchModule,
    OptimizerFactory,
    gather_from_ranks,
    this_rank,
)


def _detached(hidden: Hidden) -> Hidden:
    return hidden[0].detach(), hidden[1].detach()


class LanguageModel(GlobalBatchModule):
    """Next-word prediction over token streams, with the hidden state carried between windows.

    Each (rank, accumulation step) slot reads the same streams in every window (see
    ``batching.streams``), so the module keeps one detached hidden state per slot and
    feeds it to that slot's next window: the gradient is truncated at window edges, the
    context is not. States start from zero at window 0 of each epoch and, for evaluation,
    at the start of each evaluation; ``carry_hidden=False`` starts every window from zero.
    Checkpoints hold the states of all streams in stream order (gathered from every
    rank), so a resumed run continues exactly, and on another layout each new slot
    takes the states of the streams it now reads.

    ``net`` builds the network (``model.net``, a partial) given the vocabulary size.
    """

    # logged at each validation: fit and sweep check their metric against it before training
    VALIDATION_METRICS: ClassVar[tuple[str, ...]] = ("val/loss", "val/ppl")
    TRAINING_METRICS: ClassVar[tuple[str, ...]] = ("train/loss", "train/ppl")

    def __init__(
        self,
        data: DataDescription,
        net: Callable[..., nn.Module],
        optimizer: OptimizerFactory,
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = "val/loss",
        carry_hidden: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__(data, optimizer, scheduler, scheduler_interval, scheduler_monitor)
        self.carry_hidden = carry_hidden
        self.net = net(vocab_size=self.data.vocab_size)
        if compile:
            self.net.compile()
        self._train_hidden: dict[int, Hidden] = {}
        self._eval_hidden: Hidden | None = None
        for split in ("val", "test"):
            setattr(self, f"{split}_nll", ExactMean())

    def forward(self, tokens: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        return self.net(tokens, hidden)

    def _token_nll(self, batch: TokenWindow, hidden: Hidden | None) -> tuple[Tensor, Hidden]:
        """Per-token NLL ``(streams * length,)`` and the final (detached) hidden state."""
        if not self.carry_hidden or batch.window == 0:
            hidden = None
        logits, hidden = self(batch.inputs, hidden)
        nll = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
        return nll, _detached(hidden)

    def training_step(self, batch: TokenWindow, batch_idx: int) -> Tensor:
        nll, self._train_hidden[batch.slot] = self._token_nll(batch, self._train_state(batch.slot))
        mean = nll.mean().detach()
        self.log_step_metric("train/loss", mean)
        self.log_step_metric("train/ppl", mean.exp())
        return self.global_mean(nll.sum(), batch.global_items)

    def _train_state(self, slot: int) -> Hidden | None:
        state = self._train_hidden.get(slot)
        if state is None or state[0].device == self.device:
            return state
        return state[0].to(self.device), state[1].to(self.device)

    def evaluate(self, batch: TokenWindow, split: str) -> None:
        nll, self._eval_hidden = self._token_nll(batch, self._eval_hidden)
        getattr(self, f"{split}_nll").update(nll)

    def log_evaluation(self, split: str) -> None:
        metric: ExactMean = getattr(self, f"{split}_nll")
        loss = metric.compute()  # summed over ranks: every token counted once
        metric.reset()
        # identical on every rank already: max keeps it exact and tells Lightning it is synced
        sync = {"sync_dist": True, "reduce_fx": "max"}
        self.log(f"{split}/loss", loss, prog_bar=split == "val", **sync)
        self.log(f"{split}/ppl", loss.exp(), prog_bar=split == "val", **sync)

    def on_validation_epoch_start(self) -> None:
        self._eval_hidden = None

    def on_test_epoch_start(self) -> None:
        self._eval_hidden = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # slot j of rank r reads streams [(r*k + j)*m, (r*k + j + 1)*m): rank-major, then slot, is stream order
        by_rank = gather_from_ranks([(h.cpu(), c.cpu()) for _, (h, c) in sorted(self._train_hidden.items())])
        slots = [state for states in by_rank for state in states]
        checkpoint["hidden_states"] = (
            {"h": torch.cat([h for h, _ in slots], dim=1), "c": torch.cat([c for _, c in slots], dim=1)}
            if slots and all(len(states) == len(by_rank[0]) for states in by_rank)
            else None
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        states = checkpoint.get("hidden_states")
        if not isinstance(states, dict):
            return
        accumulate, world = self.trainer.accumulate_grad_batches, self.trainer.world_size
        per_slot = states["h"].shape[1] // (accumulate * world)
        first_slot = this_rank() * accumulate
        self._train_hidden = {
            slot: tuple(
                states[part][:, (first_slot + slot) * per_slot : (first_slot + slot + 1) * per_slot].clone()
                for part in ("h", "c")
            )
            for slot in range(accumulate)
        }
