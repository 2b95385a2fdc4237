"""Sentence files in the documented layout: what is read, what is refused (naming file and line), and fit on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_template.tasks.sentences.corpus import EOS, UNK, read_sentence_folder
from lightning_template_core import UserError
from lightning_template_core.testing.runs import QUIET

TOPICS = {"sport": ["ball", "goal", "team", "match"], "food": ["bread", "soup", "salt", "cook"]}
COMMON = ["the", "a", "was", "and", "of"]


def write_folder(root: Path, per_split: int = 120, seed: int = 0, labels: bool = True) -> Path:
    """train.txt, valid.txt, test.txt of `label<TAB>sentence` lines (or bare sentences), with blank lines."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.txt", per_split), ("valid.txt", per_split // 3), ("test.txt", per_split // 3)):
        lines = []
        for i in range(count):
            topic = list(TOPICS)[i % 2]
            cycle = TOPICS[topic] + COMMON  # each word is followed by the next one of its topic's cycle
            start = rng.integers(len(cycle))
            words = [cycle[(start + k) % len(cycle)] for k in range(rng.integers(2, 14))]
            lines.append((f"{topic}\t" if labels else "") + " ".join(words))
            if i % 10 == 0:
                lines.append("")  # blank lines are skipped
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_a_folder_reads_as_sentences_with_eos_labels_and_a_train_vocabulary(tmp_path):
    root = write_folder(tmp_path / "data")
    with (root / "test.txt").open("a") as handle:
        handle.write("sport\tthe zebra ball\n")  # a word train never saw
    corpus, cut = read_sentence_folder(root, labels=True, max_length=50)
    train = corpus.splits["train"]
    assert cut == 0 and len(train) == 120 and corpus.classes == ["food", "sport"]
    assert corpus.words[:2] == [UNK, EOS] and "zebra" not in corpus.words
    first = (root / "train.txt").read_text().splitlines()[0]
    label, sentence = first.split("\t")
    assert [corpus.words[i] for i in train.sentence(0)] == [*sentence.split(), EOS]
    assert corpus.classes[train.labels[0]] == label
    last = corpus.splits["test"].sentence(len(corpus.splits["test"]) - 1)
    assert [corpus.words[i] for i in last] == ["the", UNK, "ball", EOS]


def test_very_long_lines_are_cut_to_max_length_and_counted(tmp_path):
    root = write_folder(tmp_path / "data", labels=False)
    with (root / "train.txt").open("a") as handle:
        handle.write(" ".join(["ball"] * 5000) + "\n")
    corpus, cut = read_sentence_folder(root, labels=False, max_length=30)
    assert cut == 1 and corpus.splits["train"].lengths.max() == 30
    assert corpus.words[corpus.splits["train"].sentence(len(corpus.splits["train"]) - 1)[-1]] == EOS


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (b"sport\tthe ball \xff was\n", r"train.txt:4: byte 0xff at column 16 is not UTF-8"),
        (b"sport\tthe \x00 ball\n", r"train.txt:4: control character '\\x00' at column 11"),
        (b"the ball was\n", r"train.txt:4: no label"),
        (b"sport\t\n", r"train.txt:4: the label 'sport' has no sentence"),
    ],
)
def test_a_bad_line_is_an_error_naming_the_file_and_line(tmp_path, damage, message):
    root = write_folder(tmp_path / "data", per_split=3)
    train = root / "train.txt"
    train.write_bytes(train.read_bytes().replace(b"\n\n", b"\n") + damage)
    with pytest.raises(UserError, match=message):
        read_sentence_folder(root, labels=True, max_length=50)


def test_a_label_train_never_saw_and_missing_files_are_errors(tmp_path):
    root = write_folder(tmp_path / "data")
    with (root / "valid.txt").open("a") as handle:
        handle.write("weather\tthe rain\n")
    with pytest.raises(UserError, match=r"valid.txt:\d+: label 'weather' never occurs in train.txt"):
        read_sentence_folder(root, labels=True, max_length=50)
    (root / "test.txt").unlink()
    with pytest.raises(UserError, match=r"lacks test.txt"):
        read_sentence_folder(root, labels=True, max_length=50)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["sentences_lm_files", "sentences_topic_files"])
def test_fit_trains_on_a_folder_of_files_and_reports_the_references(fit, tmp_path, experiment):
    root = write_folder(tmp_path / "data", per_split=480)
    run = fit(
        f"experiment={experiment}",
        f"data.root={root}",
        "data.global_batch_size=null",
        "data.global_batch_tokens=256",
        "trainer.max_epochs=2",
        "model.net.hidden_size=32",
        *QUIET,
    )
    test = run.summary()["test"]
    if experiment == "sentences_topic_files":
        assert test["test/acc"] > test["test/acc_majority"] + 0.2  # the topic words give the label away
        assert "test/ppl_unigram" not in test  # a classifier is not compared with a perplexity
    else:
        assert test["test/ppl"] < 0.5 * test["test/ppl_unigram"]  # the word order gives the next word away
        assert "test/acc_majority" not in test


def test_fit_on_a_file_with_a_bad_byte_exits_2_naming_the_line(fit, tmp_path):
    root = write_folder(tmp_path / "data", per_split=30)
    (root / "valid.txt").write_bytes(b"sport\tthe ball\nfood\tthe \xe9 soup\n")
    run = fit("experiment=sentences_topic_files", f"data.root={root}", *QUIET, check=False)
    assert run.returncode == 2 and "valid.txt:2: byte 0xe9" in run.output
    assert not (run.run_dir / "summary.json").exists()
