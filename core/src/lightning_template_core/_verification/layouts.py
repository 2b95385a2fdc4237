"""The runs ``verify`` compares: one global batch split four ways, and a stop and resume.

Each run is a real ``fit`` process (DDP included), so what is checked is what users run.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_template_core._errors import UserError

EXACT = 1e-9  # the largest weight difference still called exact (float64 sums in another order)


@dataclass(frozen=True)
class Layout:
    """A split of the global batch: ``devices`` processes, each accumulating ``accumulate`` micro-batches."""

    name: str
    devices: int
    accumulate: int

    def overrides(self, global_batch_size: int) -> list[str]:
        micro = global_batch_size // (self.devices * self.accumulate)
        strategy = "ddp" if self.devices > 1 else "auto"
        return [f"trainer.devices={self.devices}", f"trainer.strategy={strategy}", f"data.micro_batch_size={micro}"]

    def shape(self, global_batch_size: int) -> str:
        micro = global_batch_size // (self.devices * self.accumulate)
        return f"{micro} x {self.accumulate} x {self.devices}"


REFERENCE = Layout("1 process", 1, 1)
LAYOUTS = (
    REFERENCE,
    Layout("accumulate 2", 1, 2),
    Layout("2 DDP processes", 2, 1),
    Layout("2 DDP x accumulate 2", 2, 2),
)
SPLITS = 4  # the most any layout divides the global batch into


def keep_every(steps: int) -> list[str]:
    """Overrides that keep a checkpoint s<step>.ckpt every ``steps`` optimizer steps, besides last.ckpt.

    ``monitor=null`` makes the top-k files a file per step; each holds the state last.ckpt
    holds at that step, so a run can be resumed from any of them.
    """
    return [
        f"callbacks.model_checkpoint.every_n_train_steps={steps}",
        "callbacks.model_checkpoint.monitor=null",
        "callbacks.model_checkpoint.save_top_k=-1",
        r"callbacks.model_checkpoint.filename=s\{step:04d\}",
    ]


def step_checkpoint(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"s{step:04d}.ckpt"


def is_exact(difference: float | None) -> bool:
    return difference is not None and difference <= EXACT  # nan (a failed run) is not


class RunFailed(Exception):
    """A ``fit`` run of verify's ended without its last checkpoint (the log says why)."""

    def __init__(self, run_dir: Path, returncode: int) -> None:
        super().__init__(f"fit exited with status {returncode}; its output: {run_dir / 'fit.log'}")


def run_fit(overrides: list[str], run_dir: Path) -> dict[str, torch.Tensor]:
    """Run ``fit`` with ``overrides`` in ``run_dir``; the weights of its last checkpoint.

    A run that ``fit`` refuses (status 2) is the user's to fix: its message is raised as a UserError.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "lightning_template_core.fit", *overrides, f"hydra.run.dir={run_dir}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    (run_dir / "fit.log").write_text(done.stdout + done.stderr)
    if done.returncode == 2:
        said = done.stderr.strip().split("\n\n")[-1]
        raise UserError(f"fit refused one of verify's runs ({run_dir.name}): {said}")
    last = run_dir / "checkpoints" / "last.ckpt"
    if done.returncode != 0 or not last.is_file():
        raise RunFailed(run_dir, done.returncode)
    return weights(last)


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {name: tensor for name, tensor in state.items() if tensor.is_floating_point()}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between two runs' weights (inf where they hold other tensors)."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return float("inf")
    return max(((a[k].double() - b[k].double()).abs().max().item() for k in a), default=0.0)
