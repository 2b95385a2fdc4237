"""What a model must know of its data before it is built, handed over by the DataModule.

The model is built from this description, not by reaching into a DataModule through
the Trainer, so it can be trained on any loader, and the description is saved with the
model's hyperparameters as plain data: a checkpoint says which classes or which
vocabulary its outputs mean, and loads with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lightning_template_core._errors import UserError


@dataclass(frozen=True)
class DataDescription:
    """The input of one item and what the outputs name.

    ``item_shape`` is one item's tensor shape without the batch dimension (``()`` for a
    token). ``classes`` names the classes of a classifier's outputs, ``vocabulary`` the
    tokens a model of sequences predicts; a task leaves the other empty.
    """

    item_shape: tuple[int, ...]
    classes: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.classes) == 1:  # every classifier, whatever its data: refused before a network is built
            raise UserError(
                f"The data has one class ({self.classes[0]!r}): a classifier needs two or more. Check data.root"
                " (one folder per class) or the split files, so that at least two classes have items."
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def as_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, as saved in a checkpoint's hyperparameters."""
        plain = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else dict(value) for key, value in plain.items()}

    @classmethod
    def of(cls, value: DataDescription | Mapping[str, Any]) -> DataDescription:
        """A description from itself or from its :meth:`as_dict` form (a checkpoint's hyperparameters)."""
        if isinstance(value, DataDescription):
            return value
        return cls(
            item_shape=tuple(value["item_shape"]),
            classes=_strings(value.get("classes", ())),
            vocabulary=_strings(value.get("vocabulary", ())),
            extra=dict(value.get("extra") or {}),
        )


def _strings(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(value) for value in values)
