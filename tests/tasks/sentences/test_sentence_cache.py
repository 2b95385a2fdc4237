"""Sentence files are tokenised once into a memory-mapped cache: the ids, offsets and labels the text reads as."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_sentence_files import write_folder

from lightning_template.tasks.sentences import corpus as sentence_corpus
from lightning_template.tasks.sentences.corpus import EOS, SPLIT_FILES, UNK, read_sentence_folder
from lightning_template_core.testing import max_abs_difference
from lightning_template_core.testing.runs import QUIET


def read_plainly(root: Path, labels: bool, max_length: int, vocab_size: int | None):
    """The documented reading, written out: non-blank lines, an optional label before a tab, the training words by
    falling count after <unk> and <eos>, lines cut to max_length - 1 words and <eos>."""
    lines = {
        split: [line for line in (root / name).read_text().splitlines() if line.strip()]
        for split, name in SPLIT_FILES.items()
    }
    parsed = {split: [_sentence_and_label(line) for line in text] for split, text in lines.items()}
    counts = Counter(word for sentence, _ in parsed["train"] for word in sentence.split())
    ranked = [word for word, _ in counts.most_common() if word not in (UNK, EOS)]
    words = [UNK, EOS, *ranked[: None if vocab_size is None else vocab_size - 2]]
    index = {word: i for i, word in enumerate(words)}
    classes = sorted({label for _, label in parsed["train"]}) if labels else []
    return {
        split: (
            [[index.get(w, 0) for w in sentence.split()[: max_length - 1]] + [index[EOS]] for sentence, _ in rows],
            [classes.index(label) if labels else -1 for _, label in rows],
        )
        for split, rows in parsed.items()
    }, words


def _sentence_and_label(line: str) -> tuple[str, str]:
    label, tab, sentence = line.partition("\t")
    return (sentence, label.strip()) if tab else (line, "")


@pytest.mark.parametrize(("labels", "max_length", "vocab_size"), [(True, 50, None), (False, 6, 8)])
def test_the_cache_holds_the_sentences_the_text_reads_as(tmp_path, monkeypatch, labels, max_length, vocab_size):
    monkeypatch.setattr(sentence_corpus, "CHUNK_LINES", 7)  # many chunks, even in a small folder
    root = write_folder(tmp_path / "data", labels=labels)
    corpus, cut = read_sentence_folder(root, labels=labels, max_length=max_length, vocab_size=vocab_size)
    expected, words = read_plainly(root, labels, max_length, vocab_size)
    assert corpus.words == words
    for split, (sentences, classes) in expected.items():
        read = corpus.splits[split]
        assert [read.sentence(i).tolist() for i in range(len(read))] == sentences, split
        assert read.labels.tolist() == classes and isinstance(read.tokens, np.memmap)
    assert (cut > 0) == (max_length == 6)
    (cache,) = (root / ".cache").glob("sentences-*")
    written = (cache / "manifest.json").stat().st_mtime_ns
    read_sentence_folder(root, labels=labels, max_length=max_length, vocab_size=vocab_size)
    assert (cache / "manifest.json").stat().st_mtime_ns == written  # mapped, not read again
    read_sentence_folder(root, labels=labels, max_length=max_length + 1, vocab_size=vocab_size)
    assert len(list((root / ".cache").glob("sentences-*"))) == 2  # another setting, another cache


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["sentences_topic_files", "sentences_lm_files"])
def test_a_fit_from_a_cold_and_a_warm_cache_trains_the_same_weights(fit, tmp_path, experiment):
    """Both objectives: the classifier (labels) and the next-word model."""
    root = write_folder(tmp_path / "data", labels=experiment == "sentences_topic_files")
    common = [f"experiment={experiment}", f"data.root={root}", "trainer.max_steps=4", "test_after_fit=false", *QUIET]
    cold = fit(*common, name="cold")
    assert "Data cache: decoding the sentences" in cold.output
    warm = fit(*common, name="warm")
    assert "Data cache: decoding" not in warm.output
    assert max_abs_difference(cold.weights(), warm.weights()) == 0


def test_a_cache_with_labels_outside_the_classes_is_built_again_never_read(tmp_path, caplog):
    """Labels set to 99 with the file's size kept: the cache is built again from the files, with one line."""
    root = write_folder(tmp_path / "s", labels=True)
    expected = read_sentence_folder(root, labels=True, max_length=40)[0].splits["train"].labels.tolist()
    (cache,) = (root / ".cache").glob("sentences-*")
    labels = np.memmap(cache / "train_labels.bin", dtype=np.int64, mode="r+")
    labels[:] = 99
    labels.flush()
    del labels
    with caplog.at_level("INFO"):
        again = read_sentence_folder(root, labels=True, max_length=40)[0]
    assert again.splits["train"].labels.tolist() == expected
    assert "is damaged" in caplog.text and "building it again" in caplog.text
