"""Lightning's CSV logger, made to continue a run's ``metrics.csv`` instead of deleting it."""

from __future__ import annotations

import csv
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

    def drop_rows_from(self, step: int) -> None:
        """Forget rows logged at ``step`` or later (by an attempt that was killed after its last checkpoint)."""
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        kept = [row for row in rows if not row.get("step") or int(float(row["step"])) < step]
        if len(kept) < len(rows):  # whole or not at all: a kill here leaves the old file, not half of it
            atomic_write_text(path, csv_text(kept, self.metrics_keys))


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
        self.experiment.drop_rows_from(global_step)
