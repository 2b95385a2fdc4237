"""The training loss as the mean over the whole global batch, for any decomposition."""

from __future__ import annotations

from torch import Tensor


def global_mean_loss(
    loss_sum: Tensor, items_in_global_batch: float, accumulate_grad_batches: int, world_size: int
) -> Tensor:
    """Scale a micro-batch's summed per-item loss for Lightning's automatic optimization.

    Lightning divides each micro-batch loss by ``accumulate_grad_batches`` and DDP
    averages gradients over ranks. Returning ``loss_sum * k * world / N`` makes those
    two cancel, so the accumulated gradient is exactly that of ``sum(all losses) / N``
    where ``N`` counts the items (samples, or tokens) of the whole global batch across
    every rank and micro-step. Dividing each micro-batch by its own size instead is only
    right when every micro-batch holds the same number of items.
    """
    if items_in_global_batch <= 0:
        raise ValueError(f"items_in_global_batch must be positive, got {items_in_global_batch}")
    return loss_sum * (accumulate_grad_batches * world_size / items_in_global_batch)
