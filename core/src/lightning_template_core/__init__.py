"""The core of lightning-template: any split of a global batch trains the same model, and a run resumes exactly.

This is the task contract, the whole public API: what a task (a DataModule, a network, a
LightningModule and its inference hooks) builds on. Everything else in the package is
private by name (modules starting with ``_``) and may change in any release; the commands
(``fit``, ``tune``, ``sweep``, ``evaluate``, ``predict``, ``generate``, ``export``,
``verify``) are console scripts, and :mod:`lightning_template_core.testing` is the test kit.

Importing the package has no side effects and imports nothing heavy: each name below is
imported from its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the private module that defines it
_EXPORTS = {
    # the model: a LightningModule trained on global batches
    "GlobalBatchModule": "_training.module",
    "OptimizerFactory": "_training.module",
    "ExactMean": "_training.metrics",
    "warmup_cosine": "_training.schedules",
    # the data: DataModules that own the global batch, and what they tell the model
    "GlobalBatchDataModule": "_batching.datamodule",
    "FileDataModule": "_batching.datamodule",
    "DataDescription": "_batching.data_description",
    "keep_batch": "_batching.datamodule",
    "BatchLayout": "_batching.layout",
    "ResumableLoader": "_batching.loader",
    "EpochPosition": "_batching.loader",
    "PositionedBatchSampler": "_batching.loader",
    "SampleKey": "_batching.sampler",
    "EvalBatchSampler": "_batching.sampler",
    "KeyedPermutation": "_batching.randomness",
    "per_sample_uniforms": "_batching.randomness",
    "Folds": "_batching.validation_folds",
    "gather_from_ranks": "_batching.distributed",
    "this_rank": "_batching.distributed",
    # checks a task makes where it builds its network or data
    "check_sizes": "_command_line.build_checks",
    "check_dropout": "_command_line.build_checks",
    "checked_splits": "_command_line.build_checks",
    # files: caches decoded once, class folders, text, downloads
    "CacheWriter": "_files.array_cache",
    "CachedArrays": "_files.array_cache",
    "cache_folder": "_files.array_cache",
    "cache_key": "_files.array_cache",
    "cached_arrays": "_files.array_cache",
    "ClassFolders": "_files.class_folders",
    "SPLITS": "_files.class_folders",
    "iter_text_lines": "_files.text",
    "md5_of": "_files.downloads",
    # the hooks predict, generate and export call on a task
    "TaskInference": "_runs.task_inference",
    "ExportSpec": "_runs.task_inference",
    "Generated": "_runs.task_inference",
    "visible_files": "_runs.task_inference",
    # blocks the reference networks share
    "BasicBlock": "_nets.residual",
    "Norm": "_nets.residual",
    "make_norm": "_nets.residual",
    # a mistake the user can fix: one paragraph, exit status 2
    "UserError": "_errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and the API reference (mkdocstrings reads these statically)
    from lightning_template_core._batching.data_description import DataDescription
    from lightning_template_core._batching.datamodule import FileDataModule, GlobalBatchDataModule, keep_batch
    from lightning_template_core._batching.distributed import gather_from_ranks, this_rank
    from lightning_template_core._batching.layout import BatchLayout
    from lightning_template_core._batching.loader import EpochPosition, PositionedBatchSampler, ResumableLoader
    from lightning_template_core._batching.randomness import KeyedPermutation, per_sample_uniforms
    from lightning_template_core._batching.sampler import EvalBatchSampler, SampleKey
    from lightning_template_core._batching.validation_folds import Folds
    from lightning_template_core._command_line.build_checks import check_dropout, check_sizes, checked_splits
    from lightning_template_core._errors import UserError
    from lightning_template_core._files.array_cache import (
        CachedArrays,
        CacheWriter,
        cache_folder,
        cache_key,
        cached_arrays,
    )
    from lightning_template_core._files.class_folders import SPLITS, ClassFolders
    from lightning_template_core._files.downloads import md5_of
    from lightning_template_core._files.text import iter_text_lines
    from lightning_template_core._nets.residual import BasicBlock, Norm, make_norm
    from lightning_template_core._runs.task_inference import ExportSpec, Generated, TaskInference, visible_files
    from lightning_template_core._training.metrics import ExactMean
    from lightning_template_core._training.module import GlobalBatchModule, OptimizerFactory
    from lightning_template_core._training.schedules import warmup_cosine
