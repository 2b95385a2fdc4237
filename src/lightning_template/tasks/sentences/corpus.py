"""Independent sentences as token ids, and the reader of a folder of sentence files.

A folder holds ``train.txt``, ``valid.txt`` and ``test.txt`` (the usual word-level
layout): one sentence per line, words separated by white space, blank lines skipped.
A line may start with a label and a tab (``sports<TAB>the match ended ...``); a
classifier needs one on every line, a next-word model ignores them. Every sentence
ends with ``<eos>``. The vocabulary is the training split's words, the most frequent
first (``vocab_size`` caps it); any other word becomes ``<unk>``. Files are decoded as
strict UTF-8 (``lightning_template_core.iter_text_lines``): an undecodable byte or a control
character is an error naming the file, line and column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_template_core import (
    CachedArrays,
    CacheWriter,
    UserError,
    cache_folder,
    cache_key,
    cached_arrays,
    iter_text_lines,
)

SPLIT_FILES = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}
EOS, UNK = "<eos>", "<unk>"
NO_LABEL = -1
TOKEN_DTYPE = np.int32  # in the cache; a batch reads its sentences as int64
CHUNK_LINES = 1 << 16  # sentences held before they are appended to the cache


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
        """Sentence ``index`` as int64 ids (a copy: the tokens may be a read-only mapped cache)."""
        return self.tokens[self.offsets[index] : self.offsets[index + 1]].astype(np.int64)


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
    return list(iter_lines(path))


def iter_lines(path: Path) -> Iterator[Line]:
    """:func:`read_lines` one line at a time: memory does not grow with the file."""
    layout = "words separated by spaces (and an optional label before a tab)"
    for number, text in enumerate(iter_text_lines(path, "sentence file", layout), start=1):
        label, tab, sentence = text.partition("\t")
        if not tab:
            label, sentence = None, text
        words = sentence.split()
        if not words and label is None:
            continue  # a blank line
        if not words:
            raise UserError(f"{path}:{number}: the label {label.strip()!r} has no sentence after its tab.")
        yield Line(number, words, label.strip() if label is not None else None)


def _label_of(path: Path, line: Line, classes: dict[str, int] | None) -> int:
    """The class id of ``line``, which must have a label (of a training class, for ``classes``)."""
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
    return classes[line.label] if classes is not None else 0


def vocabulary_of(counts: Counter, vocab_size: int | None) -> list[str]:
    """``<unk>``, ``<eos>``, then the training words by falling count (first seen first among equals)."""
    counts = Counter(counts)
    counts.pop(UNK, None)
    counts.pop(EOS, None)
    ranked = [word for word, _ in counts.most_common()]
    if vocab_size is not None:
        if not isinstance(vocab_size, int) or vocab_size < 3:
            raise UserError(f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (or null: every word).")
        ranked = ranked[: vocab_size - 2]
    return [UNK, EOS, *ranked]


def read_sentence_folder(
    root: Path, *, labels: bool, max_length: int, vocab_size: int | None = None, cache_dir: str | None = None
) -> tuple[SentenceCorpus, int]:
    """The corpus under ``root`` (from its token cache, built once) and how many lines were cut to ``max_length``
    tokens (``<eos>`` included)."""
    missing = [name for name in SPLIT_FILES.values() if not (root / name).is_file()]
    if missing:
        raise UserError(
            f"data.root={root} lacks {', '.join(missing)}: a sentence folder holds train.txt, valid.txt and test.txt,"
            " one sentence per line (optionally `label<TAB>sentence`). Point data.root at such a folder."
        )
    if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < 3):
        raise UserError(f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (or null: every word).")
    settings = {"labels": labels, "max_length": max_length, "vocab_size": vocab_size}
    sources = [root / name for name in SPLIT_FILES.values()]
    cache = cached_arrays(
        cache_folder(cache_dir, root),
        "sentences",
        cache_key("sentences", settings, sources),
        lambda writer: _tokenise(writer, root, labels, max_length, vocab_size),
        f"the sentences in {root}",
        check=_damaged_contents,
    )
    arrays, info = cache.arrays, cache.info
    splits = {
        split: Sentences(arrays[f"{split}_tokens"], arrays[f"{split}_offsets"], arrays[f"{split}_labels"])
        for split in SPLIT_FILES
    }
    return SentenceCorpus(splits, info["words"], info["classes"]), info["cut"]


def _damaged_contents(cache: CachedArrays) -> str | None:
    """What is wrong with a mapped sentence cache: ids outside the vocabulary, labels outside the classes, offsets
    that do not cut the tokens in order (one pass over each array)."""
    words, classes = len(cache.info["words"]), len(cache.info["classes"])
    for split in SPLIT_FILES:
        tokens, offsets, labels = (cache.arrays[f"{split}_{part}"] for part in ("tokens", "offsets", "labels"))
        if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= words):
            return f"{split} holds ids outside the vocabulary of {words} words"
        if offsets[0] != 0 or offsets[-1] != tokens.size or bool((np.diff(offsets) < 0).any()):
            return f"{split}'s sentence offsets do not cut its {tokens.size} tokens in order"
        known = (labels == NO_LABEL) | ((labels >= 0) & (labels < classes))
        if not bool(known.all()):
            return f"{split} holds labels outside the {classes} classes"
    return None


def _tokenise(writer: CacheWriter, root: Path, labels: bool, max_length: int, vocab_size: int | None) -> dict:
    """Two passes over the files, a line at a time: count the training words (and labels), then write the ids,
    each sentence's offset and label, to the cache."""
    counts: Counter = Counter()
    label_names: set[str] = set()
    train_file = root / SPLIT_FILES["train"]
    for line in iter_lines(train_file):
        counts.update(line.words)
        if labels:
            _label_of(train_file, line, None)  # every training line has one
            label_names.add(line.label or "")
    words = vocabulary_of(counts, vocab_size)
    index = {word: i for i, word in enumerate(words)}
    classes = sorted(label_names)
    class_index = {name: i for i, name in enumerate(classes)}
    cut = 0
    for split, name in SPLIT_FILES.items():
        path, sentences = root / name, 0
        with (
            writer.appended(f"{split}_tokens", TOKEN_DTYPE) as tokens,
            writer.appended(f"{split}_lengths", np.int64) as lengths,
            writer.appended(f"{split}_labels", np.int64) as label_ids,
        ):
            ids: list[int] = []
            sizes: list[int] = []
            classes_of: list[int] = []
            for line in iter_lines(path):
                kept = line.words[: max_length - 1]
                cut += len(kept) < len(line.words)
                ids.extend([index.get(word, 0) for word in kept])
                ids.append(index[EOS])
                sizes.append(len(kept) + 1)
                classes_of.append(_label_of(path, line, class_index) if labels else NO_LABEL)
                if len(sizes) == CHUNK_LINES:
                    sentences += _flush((tokens, ids), (lengths, sizes), (label_ids, classes_of))
            sentences += _flush((tokens, ids), (lengths, sizes), (label_ids, classes_of))
        if not sentences:
            raise UserError(f"{path} holds no sentence (only blank lines): every split needs sentences.")
        _offsets_from_lengths(writer, split, sentences)
    return {"words": words, "classes": classes, "cut": cut}


def _flush(*pending: tuple) -> int:
    """Append each ``(append, values)`` pair's values to its array and empty it; the number of sentences."""
    count = len(pending[1][1])
    for append, values in pending:
        append(np.array(values))
        values.clear()
    return count


def _offsets_from_lengths(writer: CacheWriter, split: str, count: int) -> None:
    """``<split>_offsets`` (``count + 1`` entries, from 0) from the lengths written beside it, then drop those."""
    lengths = np.memmap(writer.folder / f"{split}_lengths.bin", dtype=np.int64, mode="r", shape=(count,))
    offsets = writer.array(f"{split}_offsets", (count + 1,), np.int64)
    offsets[0] = 0
    np.cumsum(lengths, out=offsets[1:])
    del lengths
    writer.remove(f"{split}_lengths")
