"""What a run directory records of the command that trained it, written once training has really started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_template_core._checkpointing.foreign_weights import ORIGIN_KEY
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._runs.provenance import record_attempt
from lightning_template_core._runs.tracker_continuity import record_tracker_runs
from lightning_template_core._secrets import mask

HYDRA_FILES = ".hydra"  # the folder Hydra would write (hydra.output_subdir), read by evaluate/predict/export


class RunRecord(Callback):
    """At the start of training: the run's config.yaml, ``.hydra/`` files and provenance, and the loggers told
    where the run stands.

    Not earlier: ``fit`` refuses some starts inside ``trainer.fit`` (a checkpoint whose data
    position or weights do not fit), and a refused start must leave an existing run exactly
    as it was; a start that fails before training must leave nothing that makes its folder
    look like a run. So Hydra does not write into the run directory itself
    (``hydra.output_subdir: null``, console logging only); this callback writes what it would.

    Each checkpoint records the experiment and model that wrote it (``written_by``), so a
    checkpoint moved into another run, or given to another experiment, is named by its own.
    """

    def __init__(self, cfg: DictConfig, output_dir: Path, resumed_step: int) -> None:
        self.cfg, self.output_dir, self.resumed_step = cfg, output_dir, resumed_step

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[ORIGIN_KEY] = {"experiment": self.cfg.get("experiment_name"), "model": self.cfg.model._target_}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            if hasattr(logger, "continue_from"):  # rows of an attempt past the checkpoint (or of a failed start)
                logger.continue_from(self.resumed_step)
            logger.log_hyperparams(OmegaConf.to_container(masked(self.cfg), resolve=True))
        if not trainer.is_global_zero:
            return
        atomic_write_text(self.output_dir / "config.yaml", mask(OmegaConf.to_yaml(self.cfg, resolve=True)))
        record_tracker_runs(trainer.loggers, self.output_dir)
        record_attempt(self.output_dir, trainer.world_size, self.resumed_step)
        if HydraConfig.initialized():
            hydra = HydraConfig.get()
            folder = self.output_dir / HYDRA_FILES
            folder.mkdir(exist_ok=True)
            atomic_write_text(folder / "config.yaml", mask(OmegaConf.to_yaml(self.cfg)))
            atomic_write_text(folder / "hydra.yaml", mask(OmegaConf.to_yaml({"hydra": hydra})))
            atomic_write_text(folder / "overrides.yaml", mask(OmegaConf.to_yaml(hydra.overrides.task)))


def masked(cfg: DictConfig) -> DictConfig:
    """``cfg`` with every URL's password masked (what the loggers record as the run's hyperparameters)."""
    return OmegaConf.create(mask(OmegaConf.to_yaml(cfg, resolve=True)))
