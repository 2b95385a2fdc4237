"""The global batch: how it is drawn, split across micro-steps and ranks, and resumed."""

from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._batching.loader import ResumableLoader
from lightning_template_core._batching.loss import global_mean_loss
from lightning_template_core._batching.sampler import EvalBatchSampler, OrderPreservingBatchSampler, SampleKey

__all__ = [
    "BatchLayout",
    "EvalBatchSampler",
    "OrderPreservingBatchSampler",
    "ResumableLoader",
    "SampleKey",
    "global_mean_loss",
]
