"""Settings checked where a network or a data set is built, so a bad value is one paragraph naming its setting.

The command line's check knows types, not what a network or data set can be built from:
an empty list of widths, a layer count of 0 or a split of no items has the right type and
fails deep inside torch or numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_template_core._errors import UserError


def check_sizes(group: str, **sizes: int | Sequence[int]) -> None:
    """Each size 1 or more, each list of sizes non-empty (named as ``<group>.<name>``)."""
    for name, value in sizes.items():
        listed = not isinstance(value, int)
        values = list(value) if listed else [value]
        if not values or any(int(v) < 1 for v in values):
            wanted = "a non-empty list of sizes, each 1 or more" if listed else "a size of 1 or more"
            raise UserError(f"{group}.{name}={_shown(value)}: give {wanted}.")


def checked_splits(train: int, val: int, test: int) -> dict[str, int]:
    """The item counts of a generated data set's splits (``data.num_train/num_val/num_test``), each 1 or more."""
    check_sizes("data", num_train=train, num_val=val, num_test=test)
    return {"train": train, "val": val, "test": test}


def check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"model.net.dropout={dropout}: give a probability from 0 up to (not including) 1.")


def _shown(value: int | Sequence[int]) -> str:
    return str(value) if isinstance(value, int) else f"[{','.join(str(v) for v in value)}]"
