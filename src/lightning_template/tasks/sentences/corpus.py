"""Independent sentences as token ids, and the reader of a folder of sentence files.

A folder holds ``train.txt``, ``valid.txt`` and ``test.txt`` (the usual word-level
layout): one sentence per line, words separated by white space, blank lines skipped.
A line may start with a label and a tab (``sports<TAB>the match ended ...``); a
classifier needs one on every line, a next-word model ignores them. Every sentence
ends with ``<eos>``. The vocabulary is the training split's words, the most frequent
first (``vocab_size`` caps it); any other word becomes ``<unk>``. Files are decoded as
strict UTF-8 (``lightning_template.files.text``): an undecodable byte or a control
character is an error naming the file, line and column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_template.errors import UserError
from lightning_template.files.text import read_text_lines

SPLIT_FILES = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}
EOS, UNK = "<eos>", "<unk>"
NO_LABEL = -1


@dataclass(frozen=True)
class Sentences:
    """Sentences of token ids, concatenated: sentence ``i`` is ``tokens[offsets[i]:offsets[i+1]]``.

    ``labels`` holds each sentence's class (``NO_LABEL`` when the data has none).
    """

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_lists(cls, sentences: list[list[int]] | list[np.ndarray], labels: list[int] | np.ndarray) -> Sentences:
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        tokens = np.concatenate([np.asarray(s, dtype=np.int64) for s in sentences]) if sentences else np.zeros(0)
        return cls(tokens.astype(np.int64), np.concatenate([[0], np.cumsum(lengths)]), np.asarray(labels, np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def has_labels(self) -> bool:
        return len(self) > 0 and bool(np.all(self.labels != NO_LABEL))

    def sentence(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]


@dataclass(frozen=True)
class SentenceCorpus:
    """The three splits, the words their ids index, and the class names their labels index."""

    splits: dict[str, Sentences]
    words: list[str]
    classes: list[str]


@dataclass(frozen=True)
class Line:
    number: int
    words: list[str]
    label: str | None


def read_lines(path: Path) -> list[Line]:
    """The non-blank lines of ``path``, split into an optional label and words; bad bytes name the line."""
    lines = []
    layout = "words separated by spaces (and an optional label before a tab)"
    for number, text in enumerate(read_text_lines(path, "sentence file", layout), start=1):
        label, tab, sentence = text.partition("\t")
        if not tab:
            label, sentence = None, text
        words = sentence.split()
        if not words and label is None:
            continue  # a blank line
        if not words:
            raise UserError(f"{path}:{number}: the label {label.strip()!r} has no sentence after its tab.")
        lines.append(Line(number, words, label.strip() if label is not None else None))
    return lines


def _labels_of(path: Path, lines: list[Line], classes: dict[str, int] | None) -> list[int]:
    """Class ids of ``lines``; every line must have a label (of a training class, for ``classes``)."""
    ids = []
    for line in lines:
        if not line.label:
            raise UserError(
                f"{path}:{line.number}: no label. A sentence classifier needs `label<TAB>sentence` on every line;"
                " add the labels, or train a next-word model (data.labels=false)."
            )
        if classes is not None and line.label not in classes:
            raise UserError(
                f"{path}:{line.number}: label {line.label!r} never occurs in train.txt, so the classifier has no"
                f" output for it (training labels: {', '.join(sorted(classes))})."
            )
        ids.append(classes[line.label] if classes is not None else 0)
    return ids


def vocabulary_of(lines: list[Line], vocab_size: int | None) -> list[str]:
    """``<unk>``, ``<eos>``, then the training words by falling count (first seen first among equals)."""
    counts = Counter(word for line in lines for word in line.words)
    counts.pop(UNK, None)
    counts.pop(EOS, None)
    ranked = [word for word, _ in counts.most_common()]
    if vocab_size is not None:
        if not isinstance(vocab_size, int) or vocab_size < 3:
            raise UserError(f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (or null: every word).")
        ranked = ranked[: vocab_size - 2]
    return [UNK, EOS, *ranked]


def read_sentence_folder(
    root: Path, *, labels: bool, max_length: int, vocab_size: int | None = None
) -> tuple[SentenceCorpus, int]:
    """The corpus under ``root`` and how many lines were cut to ``max_length`` tokens (``<eos>`` included)."""
    missing = [name for name in SPLIT_FILES.values() if not (root / name).is_file()]
    if missing:
        raise UserError(
            f"data.root={root} lacks {', '.join(missing)}: a sentence folder holds train.txt, valid.txt and test.txt,"
            " one sentence per line (optionally `label<TAB>sentence`). Point data.root at such a folder."
        )
    lines = {split: read_lines(root / name) for split, name in SPLIT_FILES.items()}
    for split, name in SPLIT_FILES.items():
        if not lines[split]:
            raise UserError(f"{root / name} holds no sentence (only blank lines): every split needs sentences.")
    words = vocabulary_of(lines["train"], vocab_size)
    index = {word: i for i, word in enumerate(words)}
    classes: list[str] = []
    if labels:
        classes = sorted({line.label or "" for line in lines["train"]})
        _labels_of(root / SPLIT_FILES["train"], lines["train"], None)  # every training line has one
    class_index = {name: i for i, name in enumerate(classes)}
    splits, cut = {}, 0
    for split, name in SPLIT_FILES.items():
        ids = []
        for line in lines[split]:
            kept = line.words[: max_length - 1]
            cut += len(kept) < len(line.words)
            ids.append([index.get(word, 0) for word in kept] + [index[EOS]])
        label_ids = _labels_of(root / name, lines[split], class_index) if labels else [NO_LABEL] * len(ids)
        splits[split] = Sentences.from_lists(ids, label_ids)
    return SentenceCorpus(splits, words, classes), cut
