"""Build the DataModule, LightningModule and Trainer of a run from its Hydra config.

Shared by every command, so ``fit``, ``tune`` and sweeps train exactly the same thing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import lightning.pytorch as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from omegaconf import DictConfig, OmegaConf

from lightning_template_core._batching.data_description import DataDescription
from lightning_template_core._batching.datamodule import GlobalBatchDataModule
from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._callbacks.monitor_history import MonitorHistory
from lightning_template_core._callbacks.progress_bar import LoggedMetricsBar
from lightning_template_core._callbacks.rank_agreement import RanksAgree
from lightning_template_core._checkpointing import AtomicCheckpointIO, ReportLostRank, ResumeState, StopOnSignal
from lightning_template_core._checkpointing.data_identity import DataIdentity
from lightning_template_core._checkpointing.epoch_end_resume import use_epoch_end_resuming_loop
from lightning_template_core._checkpointing.epoch_metrics import EpochMetrics
from lightning_template_core._errors import UserError
from lightning_template_core._reporting import RankZeroLogger
from lightning_template_core._runs.tracker_continuity import continue_tracker_runs
from lightning_template_core._runs.tracker_reach import check_trackers_reachable
from lightning_template_core._training.lr_scaling import scaled_lr

log = RankZeroLogger(__name__)


@dataclass
class Run:
    datamodule: GlobalBatchDataModule
    model: L.LightningModule
    trainer: L.Trainer
    layout: BatchLayout


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name -> config mapping (``callbacks``, ``logger``), skipping nulls."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def _with_timeout(strategy: Any, timeout_seconds: float | None) -> Any:
    """A DDP strategy named in the config, built with ``timeout_seconds`` for its collectives (others unchanged)."""
    if not isinstance(strategy, str) or strategy not in StrategyRegistry or timeout_seconds is None:
        return strategy
    entry = StrategyRegistry[strategy]
    if not issubclass(entry["strategy"], DDPStrategy):
        return strategy
    return entry["strategy"](**entry["init_params"], timeout=timedelta(seconds=timeout_seconds))


def build_trainer(cfg: DictConfig, **overrides: Any) -> L.Trainer:
    """The Trainer of ``cfg.trainer`` with the run's callbacks and loggers.

    ``accumulate_grad_batches`` is left out here: it is derived from the batch sizes
    once the world size is known (:func:`build_run`). What resuming and surviving
    failures need is always added, whatever the callbacks config says: atomic
    checkpoint files, RNG and layout state, stop signals, a report of a lost DDP rank,
    the monitored metrics' history, a check that every DDP rank holds the same settings, and
    a fit loop that resumes an epoch-end checkpoint exactly under ``max_steps``.
    """
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.pop("accumulate_grad_batches", None)
    trainer_cfg.update(overrides)
    trainer_cfg["strategy"] = _with_timeout(trainer_cfg.get("strategy", "auto"), cfg.get("ddp_timeout_seconds"))
    callbacks = [
        *_instantiate_all(cfg.get("callbacks")),
        ResumeState(),
        EpochMetrics(),
        DataIdentity(cfg.data, bool(cfg.get("continue_on_other_data", False))),
        StopOnSignal(),
        ReportLostRank(),
        MonitorHistory(),
        RanksAgree(),
    ]
    if trainer_cfg.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(LoggedMetricsBar())  # Lightning's default reads the step metrics back at every batch
    loggers = _instantiate_all(continue_tracker_runs(cfg.get("logger"), cfg.paths)) or False
    check_trackers_reachable(loggers or [])
    try:
        trainer = instantiate(
            trainer_cfg, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()], _convert_="all"
        )
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise UserError(
            f"The trainer settings are not possible: {str(cause).rstrip('.!')}. Check the trainer.* overrides"
            " (and the trainer preset: trainer=cpu, gpu, ddp, ddp_cpu or default)."
        ) from err
    use_epoch_end_resuming_loop(trainer)
    return trainer


def _check_window_limits(trainer: L.Trainer, layout: BatchLayout) -> None:
    limit = trainer.limit_train_batches
    if isinstance(limit, int) and limit % layout.accumulate_grad_batches and not trainer.fast_dev_run:
        raise UserError(
            f"trainer.limit_train_batches={limit} would end the epoch inside an accumulation window"
            f" ({layout.describe()}): use a multiple of {layout.accumulate_grad_batches}, or limit the"
            " run with trainer.max_steps instead."
        )


def _model_config(cfg: DictConfig, global_batch_size: int) -> DictConfig:
    """``cfg.model`` with ``optimizer.lr`` scaled as ``lr_scaling`` says (the run's config is left as given)."""
    model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))
    configured = OmegaConf.select(model_cfg, "optimizer.lr")
    reference, rule = cfg.get("lr_reference_batch_size"), cfg.get("lr_scaling")
    lr = scaled_lr(configured or 0.0, global_batch_size, reference, rule)  # also checks the settings
    if configured is not None:
        model_cfg.optimizer.lr = lr
        how = f"lr_scaling={rule}" + (
            f" from global batch {reference} to {global_batch_size}" if lr != configured else ""
        )
        log.info(f"Learning rate: {lr:.6g} (model.optimizer.lr {configured:g}, {how})")
    return model_cfg


def describe_data(datamodule: GlobalBatchDataModule, trained: DataDescription | None = None) -> DataDescription:
    """Fetch the data where asked, then say what the model must know of it.

    The model is built from the description before training, so the data is prepared
    here, by the first process of a machine (as Lightning's ``prepare_data`` would be).
    Processes that a launcher starts beside it (torchrun, SLURM) describe what is on
    disk: fetch data there once, before such a launch, when ``data.download=true``.

    For a model already trained (``trained``, its checkpoint's description), a DataModule
    that can read its data as the model sees it (``adopt_description``: a vocabulary)
    is told to, and data whose items or outputs mean something else is refused.
    """
    if trained is not None and hasattr(datamodule, "adopt_description"):
        datamodule.adopt_description(trained)
    if os.environ.get("LOCAL_RANK", "0") == "0":
        datamodule.prepare_data()
    description = datamodule.describe()
    if trained is None:
        return description
    for name in ("item_shape", "classes", "vocabulary"):
        if getattr(description, name) != getattr(trained, name):
            data, model = _short(getattr(description, name)), _short(getattr(trained, name))
            raise UserError(
                f"The data ({type(datamodule).__name__}, the data.* settings) has {name} {data} but the"
                f" checkpoint's model was trained on {model}: its outputs would mean something else. Evaluate on"
                f" data of the same kind (the run's data, or data.* overrides that keep its {name})."
            )
    return trained


def _short(values: tuple) -> str:
    return str(list(values[:5]))[:-1] + (f", ... ({len(values)} in all)]" if len(values) > 5 else "]")


def build_run(cfg: DictConfig, trained: DataDescription | None = None, **trainer_overrides: Any) -> Run:
    """Seed, build the three parts, and give the Trainer the accumulation the batch sizes imply.

    ``trained``: the data description of the checkpoint the run will use (see :func:`describe_data`).
    """
    torch.set_float32_matmul_precision(cfg.get("float32_matmul_precision", "highest"))  # "high": TF32 matmuls
    datamodule = instantiate(cfg.data, _convert_="all")
    trainer = build_trainer(cfg, **trainer_overrides)
    description = describe_data(datamodule, trained)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # Parameters are created in the training precision: built in float32 and cast
    # later, a float64 checkpoint would be rounded through float32 on resume.
    with trainer.init_module():
        model = instantiate(
            _model_config(cfg, datamodule.global_batch_size), data=description.as_dict(), _convert_="all"
        )
    layout = datamodule.resolve_layout(trainer.world_size, cfg.trainer.get("accumulate_grad_batches"))
    trainer.accumulate_grad_batches = layout.accumulate_grad_batches
    _check_window_limits(trainer, layout)
    log.info(f"Batch layout: {layout.describe()}")
    return Run(datamodule, model, trainer, layout)
