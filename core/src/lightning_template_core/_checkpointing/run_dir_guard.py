"""Take the run directory's lock, and refuse one that holds another run, before Hydra writes anything into it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_template_core._checkpointing.locate import CONTINUE, read_resume_point, refuse_a_second_run
from lightning_template_core._errors import EXIT_USER_ERROR, UserError, print_paragraph
from lightning_template_core._files.directory_lock import hold_run_directory


def _is_first_process() -> bool:
    """Not a DDP rank above 0, whether Lightning, torchrun or SLURM started it."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "RANK", "SLURM_PROCID"))


class RunDirGuard(Callback):
    """Before Hydra creates the run directory: hold its lock for the process's life, and refuse another run there.

    The first process of a command (not a DDP rank above 0) holds the lock. ``fit`` checks
    for another run again once its Trainer knows the ranks (for launchers that start every
    rank at once).
    """

    def __init__(self, shared: bool = False) -> None:
        self.shared = shared  # the commands that use a trained run share it (files/directory_lock.py)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not _is_first_process():
            return
        ckpt_path = OmegaConf.select(config, "ckpt_path")
        try:
            run_dir = Path(config.hydra.run.dir)
            hold_run_directory(run_dir, shared=self.shared)
            if ckpt_path == CONTINUE:
                return
            refuse_a_second_run(run_dir, None if ckpt_path is None else read_resume_point(Path(ckpt_path)))
        except UserError as err:
            print_paragraph("Error", str(err))
            sys.exit(EXIT_USER_ERROR)
