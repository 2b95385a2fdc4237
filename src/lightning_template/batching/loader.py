"""A training DataLoader that knows its epoch and resumes mid-epoch from a checkpoint."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, Protocol

from torch.utils.data import DataLoader, Dataset

from lightning_template.batching.layout import BatchLayout
from lightning_template.errors import UserError


class PositionedBatchSampler(Sized, Protocol):
    """A batch sampler that can start any epoch at any batch, and says what its order depends on."""

    layout: BatchLayout

    def set_position(self, epoch: int, start_batch: int = 0) -> None: ...

    def fingerprint(self) -> dict[str, int]:
        """The settings a saved position is only valid for (seed, sizes, layout)."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


class ResumableLoader(DataLoader):
    """DataLoader over a :class:`PositionedBatchSampler`, with Lightning's state protocol.

    Lightning saves and restores a training loader's position only when the *loader*
    has ``state_dict``/``load_state_dict``; it never asks the sampler. This loader
    counts the batches it hands out and tells the sampler which epoch to draw.
    Lightning does not prefetch from a loader with a length, so at a checkpoint the
    batches handed out are the batches trained on.

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
        layout = self.batch_sampler.layout
        return {
            **self.batch_sampler.fingerprint(),
            "micro_batch_size": layout.micro_batch_size,
            "world_size": layout.world_size,
            "micro_batches_per_epoch": len(self.batch_sampler),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "batches_done": self._handed_out, **self._fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = self._fingerprint()
        changed = {key: (state.get(key), value) for key, value in expected.items() if state.get(key) != value}
        if changed:
            detail = ", ".join(f"{key} was {old} and is now {new}" for key, (old, new) in changed.items())
            raise UserError(
                f"The checkpoint's training data position does not fit this run ({detail}). A mid-epoch resume"
                " needs the same data, seed, data.global_batch_size and layout as the run that wrote it: resume"
                " with those settings, or drop ckpt_path to start a new run."
            )
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if done >= len(self.batch_sampler):
            epoch, done = epoch + 1, 0
        self._epoch, self._resume_at = epoch, done
