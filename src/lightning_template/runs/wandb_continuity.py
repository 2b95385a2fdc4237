"""One W&B run per run directory: a continued ``fit`` logs into the W&B run of the attempts before it.

The first attempt's W&B run id is recorded in the run directory (``wandb_run_id``, once
training starts); an attempt that finds it there gives it to W&B with ``resume="allow"``,
so a run killed, preempted or stopped and continued with ``ckpt_path=last`` is one W&B
run, its steps on one ``trainer/global_step`` axis. Offline, each attempt is a folder
``wandb/offline-run-<time>-<id>`` with the same id, which ``wandb sync`` joins into one run.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, open_dict

from lightning_template.files.atomic import atomic_write_text

RUN_ID_FILE = "wandb_run_id"
WANDB_LOGGER = "WandbLogger"


def _is_wandb(entry: DictConfig | None) -> bool:
    return entry is not None and str(entry.get("_target_", "")).rsplit(".", 1)[-1] == WANDB_LOGGER


def continue_wandb_runs(loggers: DictConfig | None, paths: DictConfig) -> DictConfig | None:
    """``loggers``, each W&B logger given the run id recorded in the run directory (``paths.output_dir``)
    unless the config names one. A copy: the run's recorded config stays the command's.
    """
    if not loggers or not any(_is_wandb(entry) for entry in loggers.values()):
        return loggers
    path = Path(paths.output_dir) / RUN_ID_FILE
    if not path.is_file():
        return loggers
    run_id = path.read_text().strip()
    loggers = copy.deepcopy(loggers)
    for entry in loggers.values():
        if _is_wandb(entry) and not entry.get("id"):
            with open_dict(entry):
                entry.id, entry.resume = run_id, "allow"
    return loggers


def record_wandb_run(loggers: list[Logger], run_dir: Path) -> None:
    """Record the id of the run's W&B run, the first time (rank 0, once training starts)."""
    path = Path(run_dir) / RUN_ID_FILE
    for logger in loggers:
        if type(logger).__name__ == WANDB_LOGGER and not path.is_file():
            atomic_write_text(path, f"{logger.version}\n")
