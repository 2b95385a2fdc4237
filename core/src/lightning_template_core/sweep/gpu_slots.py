"""GPUs for concurrent trials: each worker of a sweep gets its own K of the devices the sweep sees.

Without this every trial inherits the same environment, so with ``trainer=gpu`` all
concurrent trials land on GPU 0. A worker's trials run with ``CUDA_VISIBLE_DEVICES``
naming its K devices (a DDP trial's ranks share them), as a SLURM job or a node's
scheduler hands out GPUs.
"""

from __future__ import annotations

import os

from lightning_template_core._errors import UserError

VISIBLE = "CUDA_VISIBLE_DEVICES"


def visible_devices() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` as given (indices or UUIDs), else all CUDA sees."""
    listed = os.environ.get(VISIBLE)
    if listed is not None:
        return [device.strip() for device in listed.split(",") if device.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def worker_slots(gpus_per_trial: int | None, workers: int | None) -> tuple[int, list[str | None]]:
    """The number of workers and, for each, the ``CUDA_VISIBLE_DEVICES`` of its trials (None: inherited)."""
    if gpus_per_trial is None:
        count = 1 if workers is None else workers
        if count < 1:
            raise UserError(f"--workers {count} must be at least 1.")
        return count, [None] * count
    if gpus_per_trial < 1:
        raise UserError(f"--gpus-per-trial {gpus_per_trial} must be at least 1 (leave it out to share the GPUs).")
    devices = visible_devices()
    shown = f"{VISIBLE}={os.environ[VISIBLE]}" if VISIBLE in os.environ else "what CUDA reports"
    fits = len(devices) // gpus_per_trial
    if fits == 0:
        raise UserError(
            f"--gpus-per-trial {gpus_per_trial} needs {gpus_per_trial} GPU(s) per trial; this machine shows"
            f" {len(devices)} ({shown}). Lower --gpus-per-trial, or run the sweep where there are more."
        )
    count = fits if workers is None else workers
    if count < 1 or count > fits:
        raise UserError(
            f"--workers {count} with --gpus-per-trial {gpus_per_trial} needs {count * gpus_per_trial} GPUs; this"
            f" machine shows {len(devices)} ({shown}): at most --workers {fits}, or fewer GPUs per trial."
        )
    return count, [",".join(devices[w * gpus_per_trial : (w + 1) * gpus_per_trial]) for w in range(count)]
