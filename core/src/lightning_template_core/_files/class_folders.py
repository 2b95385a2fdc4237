"""Data sets laid out as one subfolder per class, listed and split once.

Layout: ``root/<class>/<file>``; the classes are the subfolder names, sorted (a hidden
folder and ``splits`` are not classes). Optional split files ``root/splits/train.txt``,
``val.txt``, ``test.txt`` list one file per line as a path relative to ``root``
(``<class>/<file>``); anything after the path on a line (a class number) and
what follows a ``#`` are ignored. Without ``val.txt`` the validation files are drawn
from the training list; without ``test.txt`` the test split is the validation split.
Without a ``splits`` folder every class is split from ``seed`` by ``val_fraction`` and
``test_fraction``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_template_core._batching.validation_folds import Folds
from lightning_template_core._errors import UserError

SPLITS = ("train", "val", "test")
Labelled = tuple[Path, int]


@dataclass(frozen=True)
class ClassFolders:
    """What a task calls its files (``noun``, e.g. "image") and which extensions are its."""

    noun: str
    extensions: tuple[str, ...]

    @property
    def layout(self) -> str:
        return (
            f"data.root/<class>/<{self.noun}>.<ext> (one subfolder per class; extensions {', '.join(self.extensions)}),"
            f" optionally with split files data.root/splits/train.txt, val.txt and test.txt listing"
            f" <class>/<{self.noun}>.<ext> per line"
        )

    def find(self, root: Path) -> tuple[list[str], list[Labelled]]:
        """Class names and every file of the task's extensions with its class number.

        Refused: a missing root, files but no class folders, a class folder without a file.
        """
        if not root.is_dir():
            raise UserError(f"data.root={root} is not a folder. Point data.root at a folder laid out as {self.layout}.")
        folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "splits" and not p.name.startswith("."))
        files = [
            (path, label)
            for label, folder in enumerate(folders)
            for path in sorted(folder.iterdir())
            if path.suffix.lower() in self.extensions and path.is_file()
        ]
        if not folders:
            loose = sum(1 for p in root.iterdir() if p.suffix.lower() in self.extensions)
            found = f"{loose} {self.noun} file(s) directly in it but no class folders" if loose else "no class folders"
            raise UserError(
                f"data.root={root} holds {found}. Put each class's files in a subfolder named after the class"
                f" ({self.layout})."
            )
        empty = [folder.name for label, folder in enumerate(folders) if not any(lbl == label for _, lbl in files)]
        if empty:
            raise UserError(
                f"The class folder(s) {', '.join(empty[:5])} under data.root={root} hold no {self.noun} file"
                f" ({', '.join(self.extensions)}): a class without examples cannot be learnt. Add files, or move the"
                " empty folder(s) out of data.root."
            )
        return [folder.name for folder in folders], files

    def split(
        self,
        root: Path,
        files: list[Labelled],
        seed: int,
        val_fraction: float,
        test_fraction: float,
        left_out: Collection[Path] = (),
        folds: Folds | None = None,
    ) -> dict[str, list[Labelled]]:
        """``files`` into train/val/test: from ``root/splits`` if it exists, else per class from ``seed``.

        ``left_out``: files found but unreadable; a split file may list them (they are dropped), the
        split from ``seed`` is drawn among the others. ``folds``: validation is one fold of what is
        not test, per class (``val_fraction`` is not used).
        """
        rng = np.random.default_rng(seed)
        split_dir = root / "splits"
        left_out = set(left_out)
        if split_dir.is_dir():
            listed = self._listed(root, split_dir, files, val_fraction, rng, left_out, folds)
            return {split: [item for item in members if item[0] not in left_out] for split, members in listed.items()}
        files = [item for item in files if item[0] not in left_out]
        splits: dict[str, list[Labelled]] = {split: [] for split in SPLITS}
        for label in sorted({label for _, label in files}):
            members = [files[i] for i in rng.permutation(len(files)) if files[i][1] == label]
            num_test = round(len(members) * test_fraction)
            num_val = round(len(members) * val_fraction)
            splits["test"] += members[:num_test]
            if folds:
                train, val = folds.split(members[num_test:])
            else:
                train, val = members[num_test + num_val :], members[num_test : num_test + num_val]
            splits["val"] += val
            splits["train"] += train
        return {split: sorted(members) for split, members in splits.items()}

    def _listed(
        self,
        root: Path,
        split_dir: Path,
        files: list[Labelled],
        val_fraction: float,
        rng: np.random.Generator,
        left_out: set[Path],
        folds: Folds | None,
    ) -> dict[str, list[Labelled]]:
        by_name = {path.relative_to(root).as_posix(): (path, label) for path, label in files}
        listed: dict[str, list[Labelled]] = {}
        for split in SPLITS:
            split_file = split_dir / f"{split}.txt"
            if not split_file.is_file():
                continue
            names = read_split_file(split_file)
            missing = [name for name in names if name not in by_name]
            if missing:
                raise UserError(
                    f"{split_file} lists {len(missing)} {self.noun}(s) that data.root={root} does not hold (first:"
                    f" {', '.join(missing[:3])}). Paths are relative to data.root"
                    f" (<class>/<{self.noun}>.<ext>): correct the list, or restore the files."
                )
            listed[split] = [by_name[name] for name in names]
        if "train" not in listed:
            raise UserError(f"{split_dir} exists but has no train.txt: add it (see the layout: {self.layout}).")
        if "val" in listed and folds:
            raise UserError(
                f"data.folds={folds.count} draws the validation files from the training list, but {split_dir}/val.txt"
                " lists them: remove val.txt (its files join train.txt) or set data.folds=null."
            )
        if "val" not in listed:
            readable = [item for item in listed["train"] if item[0] not in left_out]
            if folds:
                train, val = folds.split_rows(rng.permutation(len(readable)))
                listed["train"], listed["val"] = [readable[i] for i in train], [readable[i] for i in val]
            else:
                listed["train"], listed["val"] = _carve(readable, val_fraction, rng)
        listed.setdefault("test", listed["val"])
        return listed

    def check_not_empty(self, root: Path, splits: dict[str, list[Labelled]]) -> None:
        for split in SPLITS:
            if not splits[split]:
                raise UserError(
                    f"The {split} split of data.root={root} has no readable {self.noun}: add {self.noun}s, list some"
                    f" in {root}/splits/{split}.txt, or change data.val_fraction / data.test_fraction."
                )


def read_split_file(path: Path) -> list[str]:
    """Relative paths listed in a split file (first field of each line)."""
    lines = (line.split("#", 1)[0].split() for line in path.read_text().splitlines())
    return [fields[0].replace("\\", "/") for fields in lines if fields]


def _carve(files: list, fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    order = rng.permutation(len(files))
    cut = max(1, round(len(files) * fraction)) if len(files) > 1 else 0
    return [files[i] for i in sorted(order[cut:])], [files[i] for i in sorted(order[:cut])]
