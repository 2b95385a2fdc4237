"""Points in four dimensions, each with a weight, classified by a small MLP: the task contract at its smallest.

``PointsClassifier`` keeps the promise (the weighted loss summed, then the global mean);
``MicroMeanClassifier`` breaks it as the 2024 accumulation bug did (a weighted mean per
micro-batch); ``model.net.norm=batch`` breaks it with BatchNorm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from lightning_template_core import DataDescription, ExactMean, GlobalBatchDataModule, GlobalBatchModule, SampleKey


class Points(NamedTuple):
    x: Tensor
    y: Tensor
    weight: Tensor
    global_items: int = 0


class PointSet(Dataset):
    def __init__(self, size: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((size, 4)).astype(np.float32)
        self.y = (self.x[:, 0] + self.x[:, 1] > 0).astype(np.int64)
        self.weight = rng.integers(1, 5, size).astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, keys: Sequence[SampleKey]) -> Points:
        rows = np.fromiter((key.index for key in keys), dtype=np.int64, count=len(keys))
        return Points(*(torch.from_numpy(array[rows]) for array in (self.x, self.y, self.weight)))


class PointsData(GlobalBatchDataModule):
    def __init__(self, num_train: int = 96, num_val: int = 32, num_test: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}

    def setup(self, stage: str | None = None) -> None:
        self.sets = {split: PointSet(size, self.seed + i) for i, (split, size) in enumerate(self.sizes.items())}

    def describe(self) -> DataDescription:
        return DataDescription(item_shape=(4,), classes=("left", "right"))

    def train_dataloader(self):
        return self.train_loader(self.sets["train"])

    def val_dataloader(self):
        return self.eval_loader(self.sets["val"])

    def test_dataloader(self):
        return self.eval_loader(self.sets["test"])


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 16, norm: str = "none") -> None:
        super().__init__()
        norms = {"none": nn.Identity(), "batch": nn.BatchNorm1d(hidden), "group": nn.GroupNorm(4, hidden)}
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden), norms[norm], nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class PointsClassifier(GlobalBatchModule):
    VALIDATION_METRICS: ClassVar[tuple[str, ...]] = ("val/loss", "val/acc")
    TRAINING_METRICS: ClassVar[tuple[str, ...]] = ("train/loss", "train/weight")

    def __init__(self, data: DataDescription, net: Callable[..., nn.Module], optimizer: Any, scheduler: Any = None):
        super().__init__(data, optimizer, scheduler)
        self.net = net(in_features=self.data.item_shape[0], num_classes=self.data.num_classes)
        for split in ("val", "test"):
            setattr(self, f"{split}_loss", ExactMean())
            setattr(self, f"{split}_acc", ExactMean())

    def weighted_losses(self, batch: Points) -> Tensor:
        return batch.weight * F.cross_entropy(self.net(batch.x), batch.y, reduction="none")

    def training_step(self, batch: Points, batch_idx: int) -> Tensor:
        losses = self.weighted_losses(batch)
        self.log_step_metric("train/loss", losses.mean().detach())
        # an epoch's mean as Lightning's documentation logs one: a run resumed inside the epoch logs the same
        self.log("train/weight", batch.weight.mean(), on_step=False, on_epoch=True, batch_size=len(batch.y))
        return self.global_mean(losses.sum(), batch.global_items)

    def evaluate(self, batch: Points, split: str) -> None:
        logits = self.net(batch.x)
        loss, acc = getattr(self, f"{split}_loss"), getattr(self, f"{split}_acc")
        loss.update(F.cross_entropy(logits, batch.y, reduction="none"))
        acc.update((logits.argmax(-1) == batch.y).double())
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True)
        self.log(f"{split}/acc", acc, on_step=False, on_epoch=True)


class MicroMeanClassifier(PointsClassifier):
    """The weighted loss averaged over each micro-batch's weights: not the global batch's mean."""

    def training_step(self, batch: Points, batch_idx: int) -> Tensor:
        losses = self.weighted_losses(batch)
        return losses.sum() / batch.weight.sum()
