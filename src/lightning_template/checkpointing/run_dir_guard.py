"""Refuse a run directory that holds another run before Hydra writes anything into it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_template.checkpointing.locate import CONTINUE, read_resume_point, refuse_a_second_run
from lightning_template.errors import EXIT_USER_ERROR, UserError, print_paragraph


def _is_first_process() -> bool:
    """Not a DDP rank above 0, whether Lightning, torchrun or SLURM started it."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))


class RunDirGuard(Callback):
    """Hydra writes ``.hydra/`` and the job log into the run directory before ``fit`` starts; check it first.

    ``fit`` checks again once its Trainer knows the ranks (for launchers that start
    every rank at once); this check only keeps Hydra's own files of the first run.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        ckpt_path = OmegaConf.select(config, "ckpt_path")
        if ckpt_path == CONTINUE or not _is_first_process():
            return
        try:
            run_dir = Path(config.hydra.run.dir)
            refuse_a_second_run(run_dir, None if ckpt_path is None else read_resume_point(Path(ckpt_path)))
        except UserError as err:
            print_paragraph("Error", str(err))
            sys.exit(EXIT_USER_ERROR)
