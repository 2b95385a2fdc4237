"""Stop signals (preemption, SLURM's warning, Ctrl-C) become a checkpoint at the next optimizer step."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from types import FrameType
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_template_core._batching.distributed import is_distributed
from lightning_template_core._checkpointing.run_checkpoint import (
    RunCheckpoint,
    at_step_boundary,
    epoch_done,
    validation_follows,
)
from lightning_template_core._errors import RunStopped
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def _slurm_job_id() -> str | None:
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None:
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def requeue_slurm_job() -> str:
    """Put this SLURM job back in the queue (it restarts with the same command line); says what happened."""
    job_id = _slurm_job_id()
    if job_id is None:
        return "not under SLURM: nothing requeued"
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"scontrol requeue {job_id} failed ({err})"
    if result.returncode:
        return f"scontrol requeue {job_id} failed: {result.stderr.strip()}"
    return f"SLURM job {job_id} requeued"


def finished_its_training(trainer: L.Trainer) -> bool:
    """Whether the run has trained all it was to (``max_steps`` reached, or the last epoch's end)."""
    max_epochs = trainer.max_epochs
    return (0 < trainer.max_steps <= trainer.global_step) or (
        max_epochs is not None and max_epochs > 0 and trainer.current_epoch >= max_epochs
    )


class StopOnSignal(Callback):
    """On SIGTERM, SIGUSR1 or SIGINT: finish the optimizer step, save ``last.ckpt``, stop with :class:`RunStopped`.

    A signal arrives in the middle of anything (a forward pass, half an accumulation
    window); saving there would not resume exactly, so the handler only records it and
    the save happens at the next step boundary. Under DDP the signal may reach one rank
    only (``kill`` on rank 0) or all of them at different moments, so the ranks agree: at
    each step boundary a max over a CPU flag is started through gloo (no device sync) and
    waited on at the next boundary, where it has long finished, so no step waits on the
    network; the ranks stop together at the boundary after the one where the request was
    seen, one step later than on one process. When a validation follows that step, they
    stop after it, once every callback has seen it (the history has its line, the checkpoint
    callback has ranked it); when it ends an epoch, after the epoch's end (where Lightning
    ranks a once-per-epoch validation), Lightning ending the fit there. Lightning's own
    handlers are replaced while training runs: they save in the middle of a step (SLURM)
    or stop without saving (SIGTERM). A second Ctrl-C interrupts at once, without a
    checkpoint. Under SLURM, SIGUSR1 (sent ahead of the time limit with
    ``--signal=USR1@90``) also requeues the job.
    """

    def __init__(self) -> None:
        self._requested: int = 0
        self._stop_after_validation: int = 0
        self._previous: dict[int, Any] = {}
        self._group: Any = None
        self._pending: tuple[Any, torch.Tensor] | None = None  # the max started at the last step boundary

    def _request(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._requested == signal.SIGINT:
            raise KeyboardInterrupt
        self._requested = self._requested or signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._requested = self._stop_after_validation = 0
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._request) for signum in STOP_SIGNALS}
        self._pending = None
        if is_distributed():  # its own group: the flag's collectives never queue behind the gradients'
            self._group = torch.distributed.new_group(backend="gloo")

    def _agreed_request(self) -> int:
        """The request the ranks agreed on: here at once on one process; under DDP the max over the ranks'
        requests as they stood at the previous step boundary (each rank reads the same one)."""
        if not is_distributed():
            return self._requested
        agreed = self._finish_pending()
        flag = torch.tensor([self._requested], dtype=torch.int64)
        work = torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=self._group, async_op=True)
        self._pending = (work, flag)
        return agreed

    def _finish_pending(self) -> int:
        if self._pending is None:
            return 0
        work, flag = self._pending
        self._pending = None
        work.wait()
        return int(flag.item())  # a host tensor: no device sync

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not at_step_boundary(trainer):
            return
        signum = self._agreed_request()
        if signum and validation_follows(trainer):
            self._stop_after_validation = signum
        elif signum:
            self._stop(trainer, signum)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._stop_after_validation or trainer.sanity_checking:
            return
        if finished_its_training(trainer):  # the validation of the last step: the run ends as it would have
            signum, self._stop_after_validation = self._stop_after_validation, 0
            self._stop(trainer, signum)
            return
        if epoch_done(trainer):
            # The epoch's end follows (Lightning ranks a once-per-epoch validation there, and the epoch-end
            # hooks run): it runs in full, the checkpoint callback writes last.ckpt after its ranking, then
            # Lightning ends the fit and the run stops at on_train_end.
            if isinstance(trainer.checkpoint_callback, RunCheckpoint):
                trainer.checkpoint_callback.write_resume_point_after_ranking()
            trainer.should_stop = True
            return
        # The callbacks Lightning calls after this one see the validation before the run stops: the run's
        # history records it, the checkpoint (Lightning calls checkpoint callbacks last) ranks it.
        for callback in trainer.callbacks[trainer.callbacks.index(self) + 1 :]:
            callback.on_validation_end(trainer, pl_module)
        self._stop(trainer, self._stop_after_validation)

    def _stop(self, trainer: L.Trainer, signum: int) -> None:
        if finished_its_training(trainer):  # the signal came as the last step or epoch ended: nothing to stop
            log.info(f"{signal.Signals(signum).name} received as training ended: the run finishes as it would have.")
            return
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, RunCheckpoint):
            path = checkpoint.save_resume_point(trainer)
        else:
            path = os.path.join(trainer.default_root_dir, "checkpoints", "last.ckpt")
            trainer.save_checkpoint(path)
        if signum == signal.SIGUSR1 and trainer.is_global_zero:
            log.info(requeue_slurm_job())
        raise RunStopped(signal.Signals(signum).name, trainer.global_step, path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            self._finish_pending()  # every rank started it; none leaves it behind
        # After an exception, Lightning's teardown puts back the handlers from before the run. Until then this
        # callback's stay: Lightning's SIGTERM handler runs a collective, which fails after a lost rank.
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self._stop_after_validation:  # stopped at an epoch's end (on_validation_end)
            self._stop(trainer, self._stop_after_validation)
