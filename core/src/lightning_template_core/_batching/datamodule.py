"""The DataModule base every task shares: the batch layout and the loaders built on it."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_template_core._batching.data_description import DataDescription
from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._batching.loader import PositionedBatchSampler, ResumableLoader
from lightning_template_core._batching.sampler import EvalBatchSampler, OrderPreservingBatchSampler
from lightning_template_core._errors import UserError
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)


def keep_batch(batch):
    """Collate function for datasets whose ``__getitems__`` already returns a whole batch."""
    return batch


@dataclass(frozen=True)
class StampGlobalItems:
    """Collate function of training loaders: each micro-batch says how many items its global batch holds.

    The loss is a mean over the whole global batch (see ``batching.loss``), so the
    training step needs that count; carried by the batch, it needs no layout lookup.
    Batches are named tuples with a ``global_items`` field.
    """

    global_items: int

    def __call__(self, batch: NamedTuple) -> NamedTuple:
        return batch._replace(global_items=self.global_items)


class GlobalBatchDataModule(L.LightningDataModule):
    """Owns the :class:`BatchLayout` and builds the loaders every task shares.

    ``fit`` resolves the layout before training (it needs the world size) and hands
    the derived ``accumulate_grad_batches`` to the Trainer; used on its own, the
    DataModule resolves it in ``setup`` and checks it against the Trainer's.

    A task's DataModule says what its model must know (:meth:`describe`) and builds
    its loaders with :meth:`train_loader` (or :meth:`resumable_loader` for a sampler
    of its own) and :meth:`eval_loader`. Data that is read from files takes ``root``
    (and ``download``) from :class:`FileDataModule`.

    The training data position is part of the DataModule's checkpointed state:
    Lightning restores a DataModule before the module's ``configure_optimizers`` runs,
    so the position reaches the training loader even when that hook builds the loader
    early (``trainer.estimated_stepping_batches`` does, and Lightning then skips
    restoring the loader itself).
    """

    def __init__(
        self,
        global_batch_size: int,
        micro_batch_size: int | None = None,
        eval_batch_size: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.global_batch_size = global_batch_size
        self.micro_batch_size = micro_batch_size
        self.eval_batch_size = eval_batch_size
        if seed < 0:  # numpy's generators take none
            raise UserError(f"seed={seed} (data.seed): give a seed of 0 or more.")
        self.seed = seed
        self.shuffle = shuffle
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.layout: BatchLayout | None = None
        self._train_loader: ResumableLoader | None = None
        self._position_to_restore: dict[str, Any] | None = None

    @abstractmethod
    def describe(self) -> DataDescription:
        """What the model must know of the data (classes, vocabulary, item shape), before training starts."""

    def test_references(self) -> dict[str, float]:
        """Metrics of reference predictors on the test split (a floor, a baseline) reported beside the model's.

        Each is named ``<metric>_<predictor>`` (``ppl_unigram``, ``acc_majority``) and reported
        only for a model that logs ``test/<metric>``: data that serves two objectives has both.
        """
        return {}

    def source_files(self) -> list[Path]:
        """The files the data is read from (none for data drawn in memory): what a continued run must find again."""
        return []

    def source_root(self) -> Path | None:
        """The folder :meth:`source_files` are named relative to (so that a moved copy is the same data)."""
        return None

    def resolve_layout(self, world_size: int, accumulate_grad_batches: int | None = None) -> BatchLayout:
        self.layout = BatchLayout.resolve(
            self.global_batch_size, self.micro_batch_size, world_size, accumulate_grad_batches
        )
        return self.layout

    def rank_and_world(self) -> tuple[int, int]:
        """This process's rank and the number of processes (0 and 1 without a Trainer)."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def current_layout(self) -> BatchLayout:
        """The layout for the loaders, resolved again if the sizes or the world changed since, and checked
        against the Trainer's accumulation."""
        _, world = self.rank_and_world()
        layout = self.layout
        stale = layout is None or layout.world_size != world or layout.global_batch_size != self.global_batch_size
        # the sizes may have changed since it was resolved (Lightning's batch-size finder sets them)
        if stale or self.micro_batch_size not in (None, layout.micro_batch_size):
            self.resolve_layout(world)
        trainer_accumulate = self.trainer.accumulate_grad_batches if self.trainer is not None else None
        if trainer_accumulate not in (None, self.layout.accumulate_grad_batches):
            raise UserError(
                f"The Trainer accumulates {trainer_accumulate} batches but {self.layout.describe()}: build the"
                f" Trainer with accumulate_grad_batches={self.layout.accumulate_grad_batches}."
            )
        return self.layout

    def loader_options(self) -> dict:
        """DataLoader keyword arguments every loader of the task shares."""
        return {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.num_workers > 0,
            # each iter() draws its workers' base seed from this generator, not the global one, so
            # starting an epoch or a validation does not move the RNG that dropout draws from
            "generator": torch.Generator().manual_seed(self.seed),
        }

    def training_shuffle(self) -> bool:
        """Whether training batches come in a new order every epoch."""
        # like Lightning, trainer.overfit_batches trains on the same first batches every epoch
        return self.shuffle and not (self.trainer is not None and self.trainer.overfit_batches)

    def train_loader(self, dataset: Dataset, **sampler_kwargs) -> ResumableLoader:
        """A resumable loader over ``dataset`` whose batches follow the global-batch layout."""
        rank, _ = self.rank_and_world()
        layout = self.current_layout()
        sampler = OrderPreservingBatchSampler(
            len(dataset), layout, rank, seed=self.seed, shuffle=self.training_shuffle(), **sampler_kwargs
        )
        log.info(f"Training data: {sampler.describe()}")
        return self.resumable_loader(dataset, sampler, StampGlobalItems(layout.global_batch_size))

    def resumable_loader(
        self, dataset: Dataset, sampler: PositionedBatchSampler, collate_fn=keep_batch
    ) -> ResumableLoader:
        """The training loader over ``sampler``, placed at the checkpoint's position when resuming.

        Its batches must carry ``global_items``: stamped by ``collate_fn``, or by the dataset itself
        (``keep_batch``) where the count varies from batch to batch.
        """
        loader = ResumableLoader(dataset, sampler, collate_fn=collate_fn, **self.loader_options())
        if self._position_to_restore is not None:
            loader.load_state_dict(self._position_to_restore)
            self._position_to_restore = None  # a loader rebuilt later starts its own epochs
        self._train_loader = loader
        return loader

    def state_dict(self) -> dict[str, Any]:
        return {} if self._train_loader is None else {"train_position": self._train_loader.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        position = state.get("train_position")
        if position is not None and self._train_loader is not None:  # built before the restore
            self._train_loader.load_state_dict(position)
        else:
            self._position_to_restore = position

    def eval_loader(self, dataset: Dataset, block_starts: np.ndarray | None = None, sampler=None) -> DataLoader:
        """Every sample once over all ranks, in order, unpadded (or the batches of a ``sampler`` of the task's)."""
        if sampler is None:
            rank, world = self.rank_and_world()
            starts = np.arange(len(dataset)) if block_starts is None else block_starts
            batch_size = self.eval_batch_size or self.current_layout().micro_batch_size
            sampler = EvalBatchSampler(starts, batch_size, rank, world)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=keep_batch, **self.loader_options())


class FileDataModule(GlobalBatchDataModule):
    """A DataModule that reads files under ``root``; ``download=True`` fetches them there first."""

    def __init__(self, *, root: str = "data", download: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.download = download

    def source_root(self) -> Path:
        return self.root

    def source_files(self) -> list[Path]:
        """Every file under ``root`` outside hidden folders (the caches); a task narrows it to what it reads."""
        if not self.root.is_dir():
            return []
        hidden = lambda path: any(part.startswith(".") for part in path.relative_to(self.root).parts)  # noqa: E731
        return [path for path in self.root.rglob("*") if path.is_file() and not hidden(path)]
