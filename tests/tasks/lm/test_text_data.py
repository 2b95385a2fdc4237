"""Text corpora: the PTB layout read from real files, the embedded topic corpus and its exact floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_template.tasks.lm import corpus as text_corpus
from lightning_template.tasks.lm.data import SyntheticTextDataModule, TextFilesDataModule
from lightning_template.tasks.lm.synthetic import TopicProcess, unigram_nll
from lightning_template_core import UserError
from lightning_template_core.testing import console_script, expect_user_error

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "and", "then", "came", "back", "home"]


def write_corpus(root: Path, lines: int = 300, seed: int = 0) -> Path:
    """A small corpus in the real layout: train.txt, valid.txt, test.txt with <unk> and unseen words."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.txt", lines), ("valid.txt", lines // 4), ("test.txt", lines // 4)):
        text = [" ".join(rng.choice(WORDS, rng.integers(3, 12))) for _ in range(count)]
        if name == "train.txt":
            text[0] += " <unk>"
        else:
            text[0] += " zebra"  # never seen in training
        (root / name).write_text("".join(f" {s} \n" for s in text))
    return root


def test_reading_builds_the_vocabulary_from_train_and_maps_unseen_words_to_unk(tmp_path):
    corpus = text_corpus.read_corpus(write_corpus(tmp_path))
    assert corpus.words[:1] == [(tmp_path / "train.txt").read_text().split()[0]]
    assert "<eos>" in corpus.words and "<unk>" in corpus.words and "zebra" not in corpus.words
    unk = corpus.words.index("<unk>")
    first_test_line = (tmp_path / "test.txt").read_text().splitlines()[0].split()
    assert corpus.splits["test"][len(first_test_line) - 1] == unk  # "zebra"
    assert corpus.splits["test"][len(first_test_line)] == corpus.words.index("<eos>")
    train_words = (tmp_path / "train.txt").read_text().split()
    train_lines = len((tmp_path / "train.txt").read_text().splitlines())
    assert len(corpus.splits["train"]) == len(train_words) + train_lines  # one <eos> per line


def test_missing_files_name_the_folder_the_files_and_the_download_switch(tmp_path):
    (tmp_path / "train.txt").write_text("a b c\n")
    with pytest.raises(UserError) as error:
        text_corpus.read_corpus(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "valid.txt" in message and "test.txt" in message
    assert "data.download=true" in message and "data.root" in message


def test_download_leaves_complete_folders_alone(tmp_path):
    write_corpus(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    text_corpus.download(tmp_path, "wikitext2")  # no network needed: nothing is missing
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_files_datamodule_serves_streams_and_a_unigram_reference(tmp_path):
    data = TextFilesDataModule(root=str(write_corpus(tmp_path)), global_batch_size=4, bptt=5, eval_batch_size=2)
    vocab_size = data.describe().vocab_size
    assert vocab_size == len(WORDS) + 2
    assert data.datasets["train"].num_streams == 4 and data.datasets["test"].num_streams == 2
    assert 1 < data.test_references()["ppl_unigram"] < vocab_size + 1


def damage(path: Path, line: bytes, number: int = 3) -> None:
    """Put ``line`` (raw bytes, its line break included) in place of line ``number`` of ``path``."""
    lines = path.read_bytes().split(b"\n")
    lines[number - 1 : number] = [line.removesuffix(b"\n")]
    path.write_bytes(b"\n".join(lines))


BAD_LINES = [
    (b"the cat \xe9 sat\n", "byte 0xe9 at column 9 is not UTF-8"),  # Latin-1 for \xc3\xa9
    (b"caf\xc3\xa9 \xff sat\n", "byte 0xff at column 6 is not UTF-8"),  # columns count characters
    (b"the \x00 cat\n", r"control character '\x00' at column 5"),
    (b"the cat\x1b[0m sat\n", r"control character '\x1b' at column 8"),
    (b"the cat sat\x7f\n", r"control character '\x7f' at column 12"),
    (b"the cat\rsat\n", r"control character '\r' at column 8"),
]


@pytest.mark.parametrize(("line", "what"), BAD_LINES)
def test_a_bad_byte_or_control_character_is_refused_naming_file_line_and_column(tmp_path, line, what):
    root = write_corpus(tmp_path)
    damage(root / "valid.txt", line)
    data = TextFilesDataModule(root=str(root), global_batch_size=4, bptt=5)
    with pytest.raises(UserError) as error:
        data.setup()
    assert str(error.value).startswith(f"{root / 'valid.txt'}:3: {what}")


def test_windows_line_ends_read_as_unix_ones(tmp_path):
    unix = write_corpus(tmp_path / "unix")
    windows = write_corpus(tmp_path / "windows")
    for path in windows.iterdir():
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    read = [text_corpus.read_corpus(root) for root in (unix, windows)]
    assert read[0].words == read[1].words
    assert all(np.array_equal(read[0].splits[split], read[1].splits[split]) for split in read[0].splits)


@pytest.mark.parametrize(("line", "what"), [BAD_LINES[0], BAD_LINES[2]])
def test_fit_lm_ptb_on_a_bad_corpus_file_exits_2_naming_the_line(tmp_path, line, what):
    root = write_corpus(tmp_path / "corpus")
    damage(root / "train.txt", line, number=7)
    run_dir = tmp_path / "run"
    run = console_script(
        "fit", "experiment=lm_ptb", f"data.root={root}", "trainer.max_steps=1", f"hydra.run.dir={run_dir}", check=False
    )
    expect_user_error(run, f"{root / 'train.txt'}:7: {what}")
    assert not (run_dir / "summary.json").exists()


def test_topic_process_probabilities_sum_to_one_after_any_prefix():
    process = TopicProcess.create(seed=1, vocab_size=60, num_chains=3, num_topics=4, topic_words=5)
    prefix = process.sample(50, seed=2)
    candidates = np.array([np.append(prefix, word) for word in range(process.vocab_size)])
    probabilities = np.exp(-process.stream_nll(candidates)[:, -1])
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)


def test_synthetic_corpus_is_seeded_and_its_floor_is_far_below_unigram():
    process = TopicProcess.create(seed=0)
    tokens = process.sample(60_000, seed=0)
    assert np.array_equal(tokens, process.sample(60_000, seed=0))
    assert not np.array_equal(tokens, process.sample(60_000, seed=1))
    streams = tokens[40_000:].reshape(10, -1)
    floor = np.exp(process.stream_nll(streams).mean())
    unigram = np.exp(unigram_nll(tokens[:40_000], streams[:, 1:].ravel(), process.vocab_size).mean())
    assert floor < 0.5 * unigram


def test_synthetic_datamodule_reports_floor_and_unigram():
    data = SyntheticTextDataModule(global_batch_size=8, num_train=20_000, num_val=4_000, num_test=4_000)
    data.setup("fit")
    assert set(data.test_references()) == {"ppl_floor", "ppl_unigram"}
    assert data.test_references()["ppl_floor"] < data.test_references()["ppl_unigram"]


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.parametrize("experiment", ["lm_ptb", "lm_wikitext2"])
def test_fit_trains_on_a_folder_in_the_real_layout_and_reports_test_perplexity(fit, tmp_path, experiment):
    root = write_corpus(tmp_path / "corpus", lines=400)
    small = [
        "model.net.embedding_size=16",
        "model.net.hidden_size=16",
        "data.bptt=10",
        "trainer.enable_progress_bar=false",
    ]
    run = fit(f"experiment={experiment}", f"data.root={root}", *small, "trainer.max_steps=6", name="corpus")
    test = run.summary()["test"]
    assert 1 < test["test/ppl"] < 1000 and "test/ppl_unigram" in test
    assert run.summary()["global_steps"] == 6


@pytest.mark.slow
def test_fit_lm_ptb_without_the_files_is_a_clear_error(fit, tmp_path):
    run = fit("experiment=lm_ptb", f"data.root={tmp_path / 'nowhere'}", name="missing", check=False)
    assert run.returncode == 2
    assert "train.txt" in run.stderr and "data.download=true" in run.stderr and "Traceback" not in run.stderr
