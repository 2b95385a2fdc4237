"""Lightning's CSV logger, made to continue a run's ``metrics.csv`` instead of deleting it."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from lightning_template_core._files.atomic import atomic_write_text, csv_text


class _ContinuingWriter(ExperimentWriter):
    """Keeps an existing ``metrics.csv`` (and its columns); Lightning's writer deletes it."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as handle:
                self.metrics_keys = next(csv.reader(handle), [])

    def drop_rows(self, dropped: Callable[[dict[str, str]], bool]) -> None:
        """Forget the rows ``dropped`` selects (logged by an attempt that was killed after its last checkpoint)."""
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        kept = [row for row in rows if not (row.get("step") and dropped(row))]
        if len(kept) < len(rows):  # whole or not at all: a kill here leaves the old file, not half of it
            atomic_write_text(path, csv_text(kept, self.metrics_keys))


def _step(row: dict[str, str]) -> int:
    return int(float(row["step"]))


def _logged_names(row: dict[str, str]) -> set[str]:
    return {name for name, value in row.items() if value != "" and name not in ("step", "epoch")}


class ContinuingCSVLogger(CSVLogger):
    """``<save_dir>/<name>/metrics.csv``, continued across the attempts of one run (``ckpt_path=last``)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _ContinuingWriter:
        if self._experiment is None:
            Path(self.root_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment

    def continue_from(self, global_step: int) -> None:
        """Keep what the run logged up to the checkpoint it resumes from (rows are numbered from step 0)."""
        self.experiment.drop_rows(lambda row: _step(row) >= global_step)

    def forget_row(self, step: int, names: set[str]) -> None:
        """Forget a row at ``step`` holding only ``names``: an epoch's row that is about to be logged again."""
        self.experiment.drop_rows(
            lambda row: _step(row) == step and bool(_logged_names(row)) and _logged_names(row) <= names
        )
