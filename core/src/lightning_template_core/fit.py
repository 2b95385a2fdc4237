"""The ``fit`` command: train one experiment, test its best checkpoint, print a summary.

fit data.global_batch_size=256 data.micro_batch_size=64
python -m lightning_template_core.fit trainer=ddp_cpu trainer.devices=2
fit ckpt_path=last hydra.run.dir=runs/mine      # continue the run in runs/mine (or start it)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig

from lightning_template_core._checkpointing import CONTINUE, ResumePoint, resolve_resume_point
from lightning_template_core._checkpointing.foreign_weights import refuse_foreign_weights
from lightning_template_core._command_line.hydra_command import hydra_command
from lightning_template_core._command_line.tables import print_summary
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._reporting import RankZeroLogger
from lightning_template_core._runs.assembly import Run, build_run
from lightning_template_core._runs.run_record import RunRecord
from lightning_template_core._runs.split_metrics import scalar, split_metrics
from lightning_template_core._stop_before_training import install as install_stop_handlers

log = RankZeroLogger(__name__)


def _start(cfg: DictConfig, run: Run, output_dir: Path) -> ResumePoint | None:
    """Find what the run resumes from; its config and logs are written once training starts (RunRecord)."""
    trainer = run.trainer
    resume = resolve_resume_point(cfg.get("ckpt_path"), output_dir, check_run_dir=trainer.is_global_zero)
    if resume is not None:
        checkpoint = torch.load(resume.path, map_location="cpu", mmap=True, weights_only=True)
        refuse_foreign_weights(checkpoint, run.model, resume.path, cfg.get("experiment_name"))
    if resume is None and cfg.get("ckpt_path") == CONTINUE and not _run_dir_given():
        log.warning(
            f"ckpt_path=last looked in {output_dir}, a new timestamped directory: to continue an earlier run,"
            " give its directory as hydra.run.dir=<run dir>."
        )
    trainer.callbacks.append(RunRecord(cfg, output_dir, resume.global_step if resume else 0))
    return resume


def _run_dir_given() -> bool:
    """Whether the command line chose the run directory (``hydra.run.dir=...``)."""
    if not HydraConfig.initialized():
        return True
    return any(override.startswith("hydra.run.dir=") for override in HydraConfig.get().overrides.hydra)


def _test_best(cfg: DictConfig, run: Run, best_path: str) -> dict[str, float]:
    """The test metrics of the best checkpoint, beside those of the data's reference predictors."""
    if not cfg.get("test_after_fit", True) or not is_overridden("test_dataloader", run.datamodule):
        return {}
    return split_metrics(run, best_path or None, "test")


def _train(run: Run, resume: ResumePoint | None) -> float:
    """Fit (from the resume point, if any); return the seconds it took."""
    started = time.perf_counter()
    # weights_only: a checkpoint holds tensors and plain data only, so no code from a pickle runs
    ckpt_path = str(resume.path) if resume else None
    run.trainer.fit(run.model, datamodule=run.datamodule, ckpt_path=ckpt_path, weights_only=True)
    return time.perf_counter() - started


def _written(path: str) -> str:
    """``path`` if a checkpoint file is there (a callback may name one it never wrote), else ""."""
    return path if path and Path(path).is_file() else ""


def _summary(cfg: DictConfig, run: Run, resume: ResumePoint | None, fit_seconds: float) -> dict[str, Any]:
    """What the run did: its best and last checkpoints, its test metrics, its pace."""
    trainer = run.trainer
    checkpoint = trainer.checkpoint_callback if isinstance(trainer.checkpoint_callback, ModelCheckpoint) else None
    # read before testing: the test restores the callback's state as the best checkpoint saved it, when
    # last.ckpt may not have been written yet (a run with one validation had "no last checkpoint")
    best_path = _written(checkpoint.best_model_path) if checkpoint else ""
    last_path = _written(checkpoint.last_model_path) if checkpoint else ""
    best_score = scalar(checkpoint.best_model_score) if checkpoint else None
    test_metrics = {} if trainer.interrupted else _test_best(cfg, run, best_path)
    samples = (trainer.global_step - (resume.global_step if resume else 0)) * run.layout.global_batch_size
    return {
        "experiment": cfg.get("experiment_name"),
        "monitor": cfg.get("monitor"),
        "best_score": best_score,
        "test": test_metrics,
        "best_checkpoint": best_path or None,
        "last_checkpoint": last_path or None,
        "resumed_from": str(resume.path) if resume else None,
        "run_dir": cfg.paths.output_dir,
        "global_steps": trainer.global_step,
        "layout": run.layout.describe(),
        "samples_per_second": round(samples / fit_seconds, 1) if fit_seconds > 0 else None,
    }


def run_fit(cfg: DictConfig) -> dict[str, Any]:
    """Train and test as ``cfg`` says; return (and on rank 0 write and print) the run's summary."""
    started = time.perf_counter()
    run = build_run(cfg)
    output_dir = Path(cfg.paths.output_dir)
    resume = _start(cfg, run, output_dir)
    summary = _summary(cfg, run, resume, _train(run, resume))
    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    if run.trainer.is_global_zero:
        atomic_write_text(output_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        print_summary(summary)
    return summary


main = hydra_command("fit")(run_fit)

if __name__ == "__main__":
    install_stop_handlers()  # as the console script does, once this module is imported
    main()
