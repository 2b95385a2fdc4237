"""Shared helpers: run the real `fit` command in a subprocess, compose configs, read run outputs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _default_task() -> str:
    """The task of the experiment ``fit`` runs by default (configs/fit.yaml)."""
    defaults = yaml.safe_load((CONFIG_DIR / "fit.yaml").read_text())["defaults"]
    return next(entry["experiment"] for entry in defaults if isinstance(entry, dict) and "experiment" in entry)


# Each task's small, fast settings (tests/tasks/<task>/tiny.yaml), for runs whose point is
# the mechanics, not the accuracy; what every task shares (fit, tune, sweep) is tested
# through the default experiment's task.
TINY_BY_TASK = {
    path.parent.name: [*yaml.safe_load(path.read_text()), *QUIET]
    for path in sorted((ROOT / "tests" / "tasks").glob("*/tiny.yaml"))
}
TASK = _default_task()
TINY = TINY_BY_TASK[TASK]


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def summary(self) -> dict:
        return json.loads((self.run_dir / "summary.json").read_text())

    def metrics(self) -> list[dict[str, str]]:
        (path,) = self.run_dir.rglob("metrics.csv")
        with path.open() as handle:
            return list(csv.DictReader(handle))

    def weights(self, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
        checkpoint = torch.load(self.run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)
        return checkpoint["state_dict"]


def run_module(
    module: str, *args: str, run_dir: Path, timeout: int = 600, check: bool = True, env: dict | None = None
) -> Completed:
    """Run ``python -m lightning_template.<module> args...`` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled", **(env or {})}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    command = [sys.executable, "-m", f"lightning_template.{module}", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    done = Completed(proc.returncode, proc.stdout, proc.stderr, run_dir)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({proc.returncode}):\n{done.output[-6000:]}")
    return done


def run_command(command: str, run_dir: Path, *overrides: str, timeout: int = 600, check: bool = True) -> Completed:
    """Run the Hydra command ``command`` (fit, tune) with its run directory and overrides."""
    return run_module(command, f"hydra.run.dir={run_dir}", *overrides, run_dir=run_dir, timeout=timeout, check=check)


@pytest.fixture
def fit(tmp_path: Path):
    """``fit(*overrides, name=..., check=True)`` runs the fit command in its own run directory."""

    def _fit(*overrides: str, name: str = "run", check: bool = True, timeout: int = 600) -> Completed:
        return run_command("fit", tmp_path / name, *overrides, check=check, timeout=timeout)

    return _fit


def quiet_trainer(**settings) -> L.Trainer:
    """A CPU Trainer without logger, progress bar or model summary, for in-process module tests."""
    quiet = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    return L.Trainer(**{**quiet, **settings})


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())
