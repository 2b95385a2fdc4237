"""Counting the reads of a tensor's value back to the host during training: each one makes a GPU wait.

A training step that reads a device value (``loss.item()``, ``int(lengths.max())``,
``if tensor:``, ``nonzero``) blocks the host until the device has caught up, so the
device idles while the host prepares the next step: a small model then runs at the
speed of its Python. The same aten ops run on the CPU, so they are counted there too
(:class:`HostReadCounter`, a ``TorchDispatchMode``). On the CPU every tensor is a host
tensor, so reads that torch makes of tensors it keeps on the host on a GPU too are left
out by where they happen (:data:`HOST_SIDE`: optimizers' step counters, a recurrent
network's per-step batch sizes, a DataLoader's seed). :class:`CountHostReads` counts the rest in
each training batch of a real fit, hooks and callbacks included, leaving out the steps
that log (``log_every_n_steps``: reading the logged values is their job) or save a
checkpoint (which copies every weight to the host).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_template_core._training.logging_steps import logs_this_step

# the aten ops that return a device value to the host (or decide on one there)
HOST_READS = frozenset({"_local_scalar_dense", "nonzero", "unique", "_unique2", "equal", "is_nonzero"})
# torch code whose reads are of tensors it keeps on the host whatever the device
HOST_SIDE = ("/torch/optim/", "/torch/nn/modules/rnn.py", "/torch/utils/data/")


def _host_side() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in HOST_SIDE):
            return True
        frame = frame.f_back
    return False


class HostReadCounter(TorchDispatchMode):
    """Counts :data:`HOST_READS` by op name, but those made in :data:`HOST_SIDE` code."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        if name in HOST_READS and not _host_side():
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


class CountHostReads(Callback):
    """Counts host reads per training batch: from the batch's start to the next one's, so its step, every
    hook, the loggers' write after it and the next batch's fetch and transfer are in it.

    ``per_step()``: reads per optimizer step over the batches of steps that neither log nor save;
    ``counts``: those reads by op; ``excluded_batches`` / ``counted_batches``: how many of each.
    :meth:`attach` puts it first in a built Trainer's callbacks, so a batch's window opens before any hook.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.counted_batches = 0
        self.excluded_batches = 0
        self._counter: HostReadCounter | None = None
        self._excluded = False  # the batch logs or saves a checkpoint

    def attach(self, trainer: L.Trainer) -> CountHostReads:
        trainer.callbacks.insert(0, self)
        return self

    def _close(self) -> None:
        if self._counter is None:
            return
        self._counter.__exit__(None, None, None)
        if self._excluded:
            self.excluded_batches += 1
        else:
            self.counts.update(self._counter.counts)
            self.counted_batches += 1
        self._counter = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self._close()
        self._excluded = logs_this_step(trainer)
        self._counter = HostReadCounter()
        self._counter.__enter__()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._excluded = True

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._close()

    def per_step(self, accumulate_grad_batches: int) -> float:
        """Reads per optimizer step (``accumulate_grad_batches`` micro-batches) over the batches counted."""
        steps = self.counted_batches / accumulate_grad_batches
        return sum(self.counts.values()) / steps if steps else 0.0
