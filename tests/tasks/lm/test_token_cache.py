"""File corpora are tokenised once into a memory-mapped cache: the same ids as reading the text, read once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_text_data import write_corpus

from lightning_template.tasks.lm import corpus as text_corpus
from lightning_template_core import UserError
from lightning_template_core.testing import expect_user_error, max_abs_difference, run_module
from lightning_template_core.testing.runs import QUIET, keep_every, run_to_end


def read_plainly(root: Path) -> tuple[dict[str, list[int]], list[str]]:
    """The PTB layout's reading, written out: words of each line and <eos>, ids in order of first appearance in
    train, <unk> last if train has none, unseen words of valid and test as <unk>."""
    text = {split: (root / name).read_text().splitlines() for split, name in text_corpus.SPLIT_FILES.items()}
    words = {split: [w for line in lines for w in [*line.split(), "<eos>"]] for split, lines in text.items()}
    vocabulary = list(dict.fromkeys(words["train"]))
    if "<unk>" not in vocabulary:
        vocabulary.append("<unk>")
    index = {word: i for i, word in enumerate(vocabulary)}
    return {split: [index.get(w, index["<unk>"]) for w in ws] for split, ws in words.items()}, vocabulary


def test_the_cache_holds_the_ids_the_text_reads_as_and_is_read_once(tmp_path, monkeypatch):
    monkeypatch.setattr(text_corpus, "CHUNK_TOKENS", 50)  # many chunks, even in a small corpus
    root = write_corpus(tmp_path / "corpus", lines=400)
    corpus = text_corpus.read_corpus(root)
    ids, vocabulary = read_plainly(root)
    assert corpus.words == vocabulary
    for split in ids:
        assert corpus.splits[split].tolist() == ids[split], split
        assert isinstance(corpus.splits[split], np.memmap)
    assert corpus.train_counts.tolist() == np.bincount(ids["train"], minlength=len(vocabulary)).tolist()
    (cache,) = (root / ".cache").glob("tokens-*")
    written = (cache / "manifest.json").stat().st_mtime_ns
    again = text_corpus.read_corpus(root)
    assert (cache / "manifest.json").stat().st_mtime_ns == written and again.words == corpus.words
    # a changed split file makes another cache, never a stale read
    with (root / "test.txt").open("a") as handle:
        handle.write("the cat came home\n")
    changed = text_corpus.read_corpus(root)
    assert changed.splits["test"].tolist() == read_plainly(root)[0]["test"]
    assert len(list((root / ".cache").glob("tokens-*"))) == 2


def test_a_model_vocabulary_reads_the_text_as_the_model_knows_it(tmp_path):
    root = write_corpus(tmp_path / "corpus")
    own = text_corpus.read_corpus(root)
    model = [*reversed(own.words)]  # another order: other ids for the same words
    read = text_corpus.read_corpus(root, vocabulary=model)
    assert read.words == model
    for split, ids in own.splits.items():
        assert [model[i] for i in read.splits[split]] == [own.words[i] for i in ids]
    without_unk = [word for word in model if word != "<unk>"]
    with pytest.raises(UserError, match=r"vocabulary lacks .* no <unk> to read them as"):
        text_corpus.read_corpus(root, vocabulary=without_unk)


@pytest.mark.slow
def test_a_fit_from_a_cold_and_a_warm_cache_trains_the_same_weights(fit, tmp_path):
    root = write_corpus(tmp_path / "corpus", lines=600)
    common = ["experiment=lm_ptb", f"data.root={root}", "data.global_batch_size=4", "trainer.max_steps=6", *QUIET]
    small = ["model.net.embedding_size=16", "model.net.hidden_size=16", "data.bptt=10", "test_after_fit=false"]
    cold = fit(*common, *small, name="cold")
    assert "Data cache: decoding the corpus" in cold.output
    warm = fit(*common, *small, name="warm")
    assert "Data cache: decoding" not in warm.output
    assert max_abs_difference(cold.weights(), warm.weights()) == 0


def cache_of(root: Path) -> Path:
    (cache,) = (root / ".cache").glob("tokens-*")
    return cache


@pytest.mark.parametrize(
    "damage",
    [
        lambda ids: ids.fill(0x7FFFFFFF),  # ids outside the vocabulary
        lambda ids: ids.__setitem__(slice(None), ids[::-1].copy()),  # other valid ids: the checksum tells
    ],
    ids=["ids_outside_the_vocabulary", "other_valid_ids"],
)
def test_a_cache_damaged_with_its_size_kept_is_built_again_never_read(tmp_path, caplog, damage):
    root = write_corpus(tmp_path / "corpus", lines=200)
    expected = text_corpus.read_corpus(root).splits["train"].tolist()
    ids = np.memmap(cache_of(root) / "train.bin", dtype=text_corpus.TOKEN_DTYPE, mode="r+")
    damage(ids)
    ids.flush()
    del ids
    with caplog.at_level("INFO"):
        again = text_corpus.read_corpus(root)
    assert again.splits["train"].tolist() == expected
    assert "is damaged" in caplog.text and "building it again" in caplog.text


def test_a_corpus_rewritten_with_its_size_and_time_kept_is_tokenised_again(tmp_path, caplog):
    """As `cp -p`, `rsync -t` or tar leave a file: the same size and modification time, other words."""
    root = write_corpus(tmp_path / "corpus", lines=200)
    text_corpus.read_corpus(root)
    test_file = root / "test.txt"
    before = test_file.stat()
    text = test_file.read_text()
    rewritten = text.replace("cat", "dog") if "cat" in text else text[::-1]
    assert len(rewritten) == len(text) and rewritten != text
    test_file.write_text(rewritten)
    os.utime(test_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    with caplog.at_level("INFO"):
        changed = text_corpus.read_corpus(root)
    assert changed.splits["test"].tolist() == read_plainly(root)[0]["test"]
    assert "1 other tokens cache(s)" in caplog.text


@pytest.mark.slow
def test_a_run_does_not_continue_on_a_corpus_rewritten_with_its_size_kept(tmp_path):
    root = write_corpus(tmp_path / "corpus", lines=600)
    common = ["experiment=lm_ptb", f"data.root={root}", "data.global_batch_size=4", "trainer.max_steps=4", *QUIET]
    common += ["model.net.embedding_size=16", "model.net.hidden_size=16", "data.bptt=10", "test_after_fit=false"]
    run = run_to_end(tmp_path / "run", *common, *keep_every(2))
    text = (root / "train.txt").read_text()
    (root / "train.txt").write_text(text[1:] + text[0])  # the same size, other bytes at the start
    step_2 = f"ckpt_path={run.run_dir / 'checkpoints' / 's0002.ckpt'}"
    refused = run_module("fit", *common, step_2, f"hydra.run.dir={tmp_path / 'again'}", run_dir=tmp_path, check=False)
    expect_user_error(refused, "1 of the data's files differ under data.root (train.txt changed)")
