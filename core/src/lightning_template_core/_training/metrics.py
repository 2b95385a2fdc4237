"""Metrics whose value does not depend on how the data was split into batches or ranks."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class ExactMean(Metric):
    """Mean of every value seen on every rank, summed in float64.

    torchmetrics' ``MeanMetric`` casts inputs to its dtype, which Lightning's module
    moves reset to float32, so its result shifts (~1e-8) with the batch split. Here the
    sum is float64 and the count an integer, both summed across ranks at compute.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, values: Tensor) -> None:
        self.total += values.detach().to(torch.float64).sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count
