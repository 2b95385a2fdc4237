"""Scale the configured learning rate with the global batch size.

``model.optimizer.lr`` is the LR that was tuned at ``lr_reference_batch_size``
(each experiment names its own). A run with another ``data.global_batch_size``
can keep it (``lr_scaling=none``), scale it linearly (SGD's usual rule) or by the
square root (often better for Adam).
"""

from __future__ import annotations

import math

from lightning_template_core._errors import UserError

CHOICES = ("none", "linear", "sqrt")


def scaled_lr(lr: float, global_batch_size: int, reference_batch_size: int | None, scaling: str | None) -> float:
    """The LR to train with: ``lr`` x (global / reference) for ``linear``, its square root for ``sqrt``."""
    rule = "none" if scaling is None else str(scaling).lower()
    if rule not in CHOICES:
        raise UserError(
            f"lr_scaling={scaling!r} is not a scaling rule: choose one of {', '.join(CHOICES)} (how"
            " model.optimizer.lr changes when data.global_batch_size differs from lr_reference_batch_size)."
        )
    if rule == "none":
        return lr
    if not isinstance(reference_batch_size, int) or isinstance(reference_batch_size, bool) or reference_batch_size < 1:
        raise UserError(
            f"lr_scaling={rule} needs lr_reference_batch_size, the global batch size at which model.optimizer.lr"
            f" was set, as a positive integer (got {reference_batch_size!r}): e.g. lr_reference_batch_size=128,"
            " or lr_scaling=none."
        )
    ratio = global_batch_size / reference_batch_size
    return lr * (ratio if rule == "linear" else math.sqrt(ratio))
