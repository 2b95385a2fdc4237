"""One tracker run per run directory: a continued ``fit`` logs into the W&B or MLflow run of the attempts before it.

The first attempt's run id is recorded in the run directory (``wandb_run_id``,
``mlflow_run_id``; once training starts); an attempt that finds it there gives it back to the
logger (W&B: ``id`` with ``resume="allow"``; MLflow: ``run_id``), so a run killed, preempted
or stopped and continued with ``ckpt_path=last`` is one tracker run, its steps on one axis.
Offline W&B writes a folder ``wandb/offline-run-<time>-<id>`` per attempt, all with the same
id, which ``wandb sync`` joins into one run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, open_dict

from lightning_template_core._files.atomic import atomic_write_text


@dataclass(frozen=True)
class Tracker:
    record: str  # the file in the run directory that holds the run id
    id_key: str  # the logger's argument that names a run to continue
    continuing: tuple[tuple[str, str], ...] = ()  # further arguments of a continued run


TRACKERS = {  # by the logger's class name
    "WandbLogger": Tracker("wandb_run_id", "id", (("resume", "allow"),)),
    "MLFlowLogger": Tracker("mlflow_run_id", "run_id"),
}


def _tracker(entry: DictConfig | None) -> Tracker | None:
    return TRACKERS.get(str(entry.get("_target_", "")).rsplit(".", 1)[-1]) if entry is not None else None


def continue_tracker_runs(loggers: DictConfig | None, paths: DictConfig) -> DictConfig | None:
    """``loggers``, each tracker's logger given the run id recorded in the run directory (``paths.output_dir``)
    unless the config names one. A copy: the run's recorded config stays the command's.
    """
    if not loggers:
        return loggers
    loggers = copy.deepcopy(loggers)
    for entry in loggers.values():
        tracker = _tracker(entry)
        path = Path(paths.output_dir) / tracker.record if tracker else None
        if tracker and path.is_file() and not entry.get(tracker.id_key):
            with open_dict(entry):
                entry[tracker.id_key] = path.read_text().strip()
                entry.update(dict(tracker.continuing))
    return loggers


def record_tracker_runs(loggers: list[Logger], run_dir: Path) -> None:
    """Record the id of each tracker's run, the first time (rank 0, once training starts)."""
    for logger in loggers:
        tracker = TRACKERS.get(type(logger).__name__)
        path = Path(run_dir) / tracker.record if tracker else None
        if tracker and not path.is_file():
            atomic_write_text(path, f"{logger.version}\n")
