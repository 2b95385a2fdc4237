"""k-fold cross-validation: the validation split as one of K folds of the data a held-out fraction would split.

With ``data.folds=K`` the pool (training and validation data; the test split is untouched) is
permuted once by the seed, as before, and cut into K folds of near-equal size; ``data.fold=i``
validates on fold i and trains on the other K-1. Every fold's run draws the same permutation,
so the K validation sets partition the pool and each item is validated on exactly once. Class
folders are cut per class (stratified), as their held-out fraction is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lightning_template_core._errors import UserError

Item = TypeVar("Item")


@dataclass(frozen=True)
class Folds:
    count: int
    index: int

    @classmethod
    def from_settings(cls, folds: int | None, fold: int | None) -> Folds | None:
        """The folds ``data.folds`` and ``data.fold`` ask for; None (a held-out fraction) when folds is null."""
        if folds is None:
            if fold not in (None, 0):
                raise UserError(f"data.fold={fold} needs data.folds (the number of folds, 2 or more): set both.")
            return None
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
            raise UserError(f"data.folds={folds!r} must be an integer of at least 2, or null (a held-out fraction).")
        if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < folds:
            raise UserError(f"data.fold={fold!r} must be an integer from 0 to {folds - 1} (data.folds={folds}).")
        return cls(folds, fold)

    def split(self, members: Sequence[Item]) -> tuple[list[Item], list[Item]]:
        """(train, val) of ``members``, already in their seeded order."""
        train, val = self.split_rows(np.arange(len(members)))
        return [members[i] for i in train], [members[i] for i in val]

    def split_rows(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) rows of a seeded permutation ``order``, each sorted."""
        parts = np.array_split(order, self.count)
        val = parts[self.index]
        train = np.concatenate([part for i, part in enumerate(parts) if i != self.index])
        return np.sort(train), np.sort(val)
