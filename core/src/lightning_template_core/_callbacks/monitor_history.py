"""Every validation's metrics in one file of the run directory, whichever loggers the run uses.

``<trainer.default_root_dir>/monitor_history.jsonl`` (the run directory) holds one JSON
line per validation: ``{"epoch": 0, "step": 40, "base_lr": 0.1, "val/acc": 0.5, ...}``,
the epoch, the optimizer steps so far, the learning rate the optimizer was set up with
(after ``lr_scaling``, before any schedule), and every scalar Lightning's callbacks see.
A sweep reads a trial's metric from it while the trial trains, with no logger assumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from lightning_template_core._checkpointing.resume_state import scalar_metrics
from lightning_template_core._files.atomic import atomic_write_text

HISTORY_NAME = "monitor_history.jsonl"
# what each line records beside the logged metrics
RECORD_FIELDS = ("epoch", "step", "base_lr")


def history_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / HISTORY_NAME


def _complete_lines(path: Path) -> list[str]:
    """The file's lines up to its last newline: a process killed mid-write leaves a partial last line."""
    if not path.is_file():
        return []
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


def read_history(path: Path) -> list[dict[str, Any]]:
    """One mapping per validation, in order (NaN and infinity read back as floats)."""
    return [json.loads(line) for line in _complete_lines(path)]


def metric_names(history: list[dict[str, Any]]) -> list[str]:
    """The logged metrics in ``history``, in the order they first appear."""
    names = dict.fromkeys(name for line in history for name in line)
    return [name for name in names if name not in RECORD_FIELDS]


def _keep_first_lines(path: Path, count: int) -> None:
    """Rewrite ``path`` with its first ``count`` complete lines, atomically (a sweep may be reading it)."""
    atomic_write_text(path, "".join(f"{line}\n" for line in _complete_lines(path)[:count]))


def _base_lr(trainer: L.Trainer) -> float | None:
    """The first parameter group's LR before any schedule (schedulers keep it as ``initial_lr``)."""
    groups = [group for optimizer in trainer.optimizers for group in optimizer.param_groups]
    return float(groups[0].get("initial_lr", groups[0]["lr"])) if groups else None


class MonitorHistory(Callback):
    """Appends a line to the run's ``monitor_history.jsonl`` at the end of each validation of ``fit`` (rank 0).

    A resumed run keeps the lines of the validations its checkpoint had seen and drops
    those of an attempt that went on past it, so the file reads as one uninterrupted
    run: the checkpoint records how many validations came before it. Sanity checks are
    not validations of the run and are not recorded.
    """

    def __init__(self) -> None:
        self.validations = 0  # validations of this run so far, resumed attempts included
        self._base_lr: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = state_dict["validations"]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._base_lr = _base_lr(trainer)
        if trainer.is_global_zero:
            _keep_first_lines(history_path(trainer.default_root_dir), self.validations)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self.validations += 1
        if not trainer.is_global_zero:
            return
        line: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        if self._base_lr is not None:
            line["base_lr"] = self._base_lr
        line.update((name, value) for name, value in scalar_metrics(trainer).items() if name not in line)
        with history_path(trainer.default_root_dir).open("a") as handle:  # closed, so flushed, line by line
            handle.write(json.dumps(line) + "\n")
