"""How one global batch is split into micro-batches, accumulation steps and ranks.

The user chooses ``global_batch_size`` (the batch one optimizer step sees) and,
optionally, ``micro_batch_size`` (what fits on one device). Everything else follows:
``micro_batch_size x accumulate_grad_batches x world_size == global_batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_template_core._errors import UserError


@dataclass(frozen=True)
class BatchLayout:
    """A checked decomposition of the global batch (sizes count samples, or blocks)."""

    global_batch_size: int
    micro_batch_size: int
    accumulate_grad_batches: int
    world_size: int
    unit: str = ""  # what the sizes count, when it is not samples (e.g. "tokens")

    @classmethod
    def resolve(
        cls,
        global_batch_size: int,
        micro_batch_size: int | None,
        world_size: int,
        accumulate_grad_batches: int | None = None,
        *,
        keys: tuple[str, str] = ("data.global_batch_size", "data.micro_batch_size"),
        unit: str = "",
    ) -> BatchLayout:
        """Derive the accumulation from the sizes, or explain why they do not fit.

        ``micro_batch_size=None`` means one micro-batch per device per step (no
        accumulation). ``accumulate_grad_batches`` is normally left ``None``; a value
        given by hand must equal the derived one. ``keys`` name the two settings in
        messages, for a task that sizes its batches in another ``unit`` (tokens).
        """
        global_key, micro_key = keys
        if not isinstance(global_batch_size, int) or global_batch_size < 1:
            raise UserError(
                f"{global_key}={global_batch_size!r} must be a positive integer: it is the number of"
                " samples one optimizer step sees, summed over devices and accumulation steps."
            )
        if global_batch_size % world_size:
            raise UserError(
                f"{global_key}={global_batch_size} is not divisible by the {world_size} devices"
                " (trainer.devices x trainer.num_nodes): choose a global batch size that is a multiple of"
                f" {world_size}, or change the number of devices."
            )
        per_device = global_batch_size // world_size
        micro = per_device if micro_batch_size is None else micro_batch_size
        if not isinstance(micro, int) or micro < 1:
            raise UserError(
                f"{micro_key}={micro_batch_size!r} must be a positive integer ({unit or 'samples'} per device"
                f" per forward pass), or null for {global_key} / devices."
            )
        if per_device % micro:
            raise UserError(
                f"{global_key}={global_batch_size} is not divisible by {micro_key}={micro}"
                f" x devices={world_size}: the global batch must split into whole micro-batches. Choose a"
                f" micro-batch size that divides {per_device} (the global batch per device)."
            )
        derived = per_device // micro
        if accumulate_grad_batches is not None and accumulate_grad_batches != derived:
            raise UserError(
                f"trainer.accumulate_grad_batches={accumulate_grad_batches} contradicts the batch sizes:"
                f" {global_key}={global_batch_size} / ({micro_key}={micro} x"
                f" devices={world_size}) = {derived}. Leave trainer.accumulate_grad_batches=null (it is derived),"
                f" or change {micro_key}."
            )
        return cls(global_batch_size, micro, derived, world_size, unit)

    def describe(self) -> str:
        """One line for the run log, e.g. ``global batch 32 = micro 8 x accumulate 2 x 2 devices``."""
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"global batch {self.global_batch_size}{unit} = micro {self.micro_batch_size}{unit}"
            f" x accumulate {self.accumulate_grad_batches} x {self.world_size} device(s)"
        )
