"""Take the run directory's lock, and refuse one that holds another run, before Hydra writes anything into it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lightning_template_core._checkpointing.locate import CONTINUE, read_resume_point, refuse_a_second_run
from lightning_template_core._errors import EXIT_USER_ERROR, UserError, print_paragraph
from lightning_template_core._files.directory_lock import held_by_a_fit, hold_run_directory


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
            if self.shared and held_by_a_fit(run_dir):
                run_dir = _beside_the_training_run(config, run_dir, str(kwargs.get("config_name") or "command"))
            hold_run_directory(run_dir, shared=self.shared)
            if ckpt_path == CONTINUE:
                return
            refuse_a_second_run(run_dir, None if ckpt_path is None else read_resume_point(Path(ckpt_path)))
        except UserError as err:
            print_paragraph("Error", str(err))
            sys.exit(EXIT_USER_ERROR)


def _beside_the_training_run(config: DictConfig, run_dir: Path, command: str) -> Path:
    """A run still training is read, not written: this command's outputs go to a folder beside it.

    Its checkpoints are written whole (a rename), so the one given is read as it was when
    this command opened it; the fit goes on undisturbed.
    """
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    beside = run_dir.with_name(f"{run_dir.name}.{command}-{stamp}")
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.run.dir = str(beside)
    print(
        f"{run_dir} is still training (its fit holds it): reading its checkpoint as written, and writing this"
        f" command's outputs to {beside}.",
        flush=True,
    )
    return beside
