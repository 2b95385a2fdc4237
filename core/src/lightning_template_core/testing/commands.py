"""The commands run as a user runs them, in processes of their own, and what they leave behind."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# Runs ``argv`` (an interpreter's arguments: ``-m <module> ...``) with ``cwd`` and ``env`` and a timeout; returns
# the finished process. A suite may start commands another way (an interpreter kept warm): set_command_runner.
CommandRunner = Callable[[list[str], Path, dict[str, str], int], subprocess.CompletedProcess]


def _fresh_interpreter(argv: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    command = [sys.executable, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False)


_runner: CommandRunner = _fresh_interpreter


def set_command_runner(runner: CommandRunner | None) -> None:
    """Start the commands of :func:`run_module` with ``runner`` (None: a fresh interpreter each, the default)."""
    global _runner
    _runner = runner or _fresh_interpreter


@dataclass
class Completed:
    """A finished command: its exit status, what it printed, and the run directory it wrote."""

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


def command_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a test's command runs in: unbuffered, Hydra's short errors, W&B off, on the CPU."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled", **(extra or {})}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def run_module(
    module: str,
    *args: str,
    run_dir: Path,
    timeout: int = 600,
    check: bool = True,
    env: dict | None = None,
    cwd: Path | None = None,
) -> Completed:
    """Run ``python -m lightning_template_core.<module> args...`` in a process of its own, as a user would."""
    argv = ["-m", f"lightning_template_core.{module}", *args]
    proc = _runner(argv, cwd or Path.cwd(), command_environment(env), timeout)
    done = Completed(proc.returncode, proc.stdout, proc.stderr, run_dir)
    if check and proc.returncode != 0:
        raise AssertionError(f"python {' '.join(argv)} failed ({proc.returncode}):\n{done.output[-6000:]}")
    return done


def run_command(command: str, run_dir: Path, *overrides: str, timeout: int = 600, check: bool = True) -> Completed:
    """Run the Hydra command ``command`` (fit, tune, evaluate, ...) with its run directory and overrides."""
    return run_module(command, f"hydra.run.dir={run_dir}", *overrides, run_dir=run_dir, timeout=timeout, check=check)


def console_script(
    command: str, *args: str, check: bool = True, timeout: int = 600, cwd: Path | None = None
) -> Completed:
    """Run an installed console script (``fit``, ``evaluate``, ``verify``, ...) as a user would (``run_dir``: cwd)."""
    cwd = cwd or Path.cwd()
    script = Path(sys.executable).with_name(command)
    proc = subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=command_environment()
    )
    done = Completed(proc.returncode, proc.stdout, proc.stderr, cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{command} {' '.join(args)} failed ({proc.returncode}):\n{done.output[-6000:]}")
    return done


def expect_user_error(run: Completed, *fragments: str, status: int | None = 2) -> None:
    """A failure (exit ``status``; None: any) explained in one paragraph naming ``fragments``, no traceback."""
    assert run.returncode == status if status is not None else run.returncode != 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    for fragment in fragments:
        assert fragment in " ".join(run.stderr.split()), run.stderr[-3000:]


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest difference between two state dicts' floating-point tensors (their keys must match)."""
    assert a.keys() == b.keys(), sorted(a.keys() ^ b.keys())
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())
