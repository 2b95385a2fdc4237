"""A training DataLoader that knows its epoch and resumes mid-epoch, on any layout of the same global batch."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, Protocol

from torch.utils.data import DataLoader, Dataset

from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._errors import UserError

# Version of the position a checkpoint holds; bump it when the meaning of a field changes.
POSITION_VERSION = 2


class PositionedBatchSampler(Sized, Protocol):
    """A batch sampler that can start any epoch at any batch, and says what its order depends on."""

    layout: BatchLayout

    def set_position(self, epoch: int, start_batch: int = 0) -> None: ...

    def fingerprint(self) -> dict[str, int]:
        """The settings a saved position is only valid for (seed, data size, global batch; not the layout)."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


class EpochPosition:
    """``set_position`` for a batch sampler whose epoch is ``len(self)`` micro-batches (every sampler here).

    The samplers differ in what they draw, not in how a position is kept: the epoch to
    draw and the micro-batch it starts at, set by :class:`ResumableLoader` before each ``iter()``.
    """

    epoch: int = 0
    start_batch: int = 0

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        """Make the next iteration be ``epoch``, starting at its micro-batch ``start_batch``."""
        if not 0 <= start_batch <= len(self):
            raise ValueError(f"start_batch {start_batch} is outside the epoch's {len(self)} micro-batches")
        self.epoch, self.start_batch = epoch, start_batch


class ResumableLoader(DataLoader):
    """DataLoader over a :class:`PositionedBatchSampler`, with Lightning's state protocol.

    Lightning saves and restores a training loader's position only when the *loader*
    has ``state_dict``/``load_state_dict``; it never asks the sampler. This loader
    counts the batches it hands out and tells the sampler which epoch to draw.
    Lightning does not prefetch from a loader with a length, so at a checkpoint the
    batches handed out are the batches trained on.

    The position is saved in *global batches* (optimizer steps into the epoch), which
    mean the same thing on every layout: a checkpoint written with 2 devices x
    micro-batch 16 resumes on 1 device x micro-batch 8 x accumulation 4 at the same
    sample (the sampler cuts every global batch the same way whatever the layout).

    Each ``iter()`` that follows one which handed out a batch starts the next epoch;
    an ``iter()`` with nothing drawn from it does not count.
    """

    def __init__(self, dataset: Dataset, batch_sampler: PositionedBatchSampler, **kwargs: Any) -> None:
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self._epoch = 0
        self._handed_out = 0
        self._resume_at: int | None = None

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def layout(self) -> BatchLayout:
        return self.batch_sampler.layout

    def __iter__(self) -> Iterator[Any]:
        if self._resume_at is not None:
            start, self._resume_at = self._resume_at, None
        else:
            if self._handed_out:
                self._epoch += 1
            start = 0
        self.batch_sampler.set_position(self._epoch, start)
        self._handed_out = start
        for batch in super().__iter__():
            self._handed_out += 1
            yield batch

    def _fingerprint(self) -> dict[str, int]:
        return {
            **self.batch_sampler.fingerprint(),
            "global_batches_per_epoch": len(self.batch_sampler) // self.layout.accumulate_grad_batches,
        }

    def state_dict(self) -> dict[str, Any]:
        lay = self.layout
        return {
            "version": POSITION_VERSION,
            "epoch": self._epoch,
            "global_batches_done": self._handed_out // lay.accumulate_grad_batches,
            # a position inside an accumulation window only resumes on the same layout
            "micro_batches_past_window": self._handed_out % lay.accumulate_grad_batches,
            "layout": {"micro_batch_size": lay.micro_batch_size, "world_size": lay.world_size},
            **self._fingerprint(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at the saved position; refuse one from other data, seed or global batch size."""
        if state.get("version") != POSITION_VERSION:
            raise UserError(
                "The checkpoint's training data position was written by an older version of this project"
                f" (position format {state.get('version', 1)}, this one reads {POSITION_VERSION}): it cannot be"
                " resumed exactly. Drop ckpt_path to start a new run."
            )
        expected = self._fingerprint()
        changed = {key: (state.get(key), value) for key, value in expected.items() if state.get(key) != value}
        if changed:
            detail = ", ".join(f"{key} was {old} and is now {new}" for key, (old, new) in changed.items())
            raise UserError(
                f"The checkpoint's training data position does not fit this run ({detail}). A resume needs the"
                " same data, seed and data.global_batch_size as the run that wrote it (the number of devices and"
                " data.micro_batch_size may change): resume with those settings, or drop ckpt_path to start a"
                " new run."
            )
        lay = self.layout
        past_window = int(state["micro_batches_past_window"])
        if past_window and state["layout"] != {"micro_batch_size": lay.micro_batch_size, "world_size": lay.world_size}:
            raise UserError(
                "The checkpoint was written inside an accumulation window (after"
                f" {past_window} of its micro-batches), which only resumes on the layout that wrote it"
                f" ({state['layout']}); this run has micro_batch_size={lay.micro_batch_size} on"
                f" {lay.world_size} device(s). Resume on that layout, or from a checkpoint written at an"
                " optimizer step."
            )
        epoch = int(state["epoch"])
        done = int(state["global_batches_done"]) * lay.accumulate_grad_batches + past_window
        if done >= len(self.batch_sampler):
            epoch, done = epoch + 1, 0
        self._epoch, self._resume_at = epoch, done
