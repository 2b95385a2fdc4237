"""The trained sentence models used as a user uses them: predict on text files, generate, export."""

from __future__ import annotations

import csv

import pytest
import torch
from omegaconf import open_dict

from lightning_template_core.testing import console_script, expect_user_error
from lightning_template_core.testing.runs import compose_fit, exported_round_trip, load_trained, tiny_overrides

TINY = tiny_overrides(__file__)

# fitted("sentences") is the topic classifier (the task's tiny experiment); this is the next-word model
NEXT_WORD = [*TINY, "experiment=sentences_lm", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def next_word_run(shared_runs):
    return shared_runs.get("fit", *NEXT_WORD)


def test_predict_classifies_each_line_as_the_models_own_forward_pass_does(fitted, tmp_path):
    checkpoint = fitted("sentences").run_dir / "checkpoints" / "last.ckpt"
    folder = tmp_path / "inputs"
    folder.mkdir()
    sentences = ["w2 w3 w4", "w10 w11 w12 w13 w14 w15", "w5 unheard w6", " ".join(["w7"] * 300)]
    (folder / "a.txt").write_text(f"{sentences[0]}\n\n{sentences[1]}\n")
    (folder / "b.txt").write_text(f"topic3\t{sentences[2]}\n{sentences[3]}\n")
    (folder / "latin1.txt").write_bytes(b"w2 caf\xe9\n")

    done = console_script("predict", f"ckpt_path={checkpoint}", f"input={folder}", f"output={tmp_path / 'p.csv'}")
    rows = {row["input"]: row for row in csv.DictReader((tmp_path / "p.csv").open())}
    names = [f"{folder / 'a.txt'}:1", f"{folder / 'a.txt'}:3", f"{folder / 'b.txt'}:1", f"{folder / 'b.txt'}:2"]
    assert sorted(rows) == sorted(names)
    assert "latin1.txt" in done.stderr and "1 unreadable input(s)" in " ".join(done.stderr.split())

    cfg = compose_fit(TINY)
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint)
    model = load_trained(cfg).model
    words = {w: i for i, w in enumerate(model.data.vocabulary)}
    for name, sentence in zip(names, sentences, strict=True):
        known = [words.get(w, words["<unk>"]) for w in sentence.split()]
        ids = [*known[: cfg.data.max_length - 1], words["<eos>"]]
        with torch.no_grad():
            probabilities = torch.softmax(model(torch.tensor([ids]), torch.tensor([len(ids)])).double(), -1)[0]
        assert rows[name]["class"] == model.data.classes[int(probabilities.argmax())]
        assert abs(float(rows[name]["probability"]) - probabilities.max().item()) < 1e-6


def test_generate_samples_a_sentence_reproducibly_and_only_from_the_next_word_model(fitted, next_word_run, tmp_path):
    checkpoint = next_word_run.run_dir / "checkpoints" / "last.ckpt"
    texts = []
    for seed in (1, 1, 2):
        output = tmp_path / f"{len(texts)}.txt"
        console_script("generate", f"ckpt_path={checkpoint}", "prompt=w2 zzz", f"seed={seed}", f"output={output}")
        texts.append(output.read_text())
    assert texts[0] == texts[1] != texts[2] and texts[0].split()[:2] == ["w2", "<unk>"]
    classifier = fitted("sentences").run_dir / "checkpoints" / "last.ckpt"
    expect_user_error(console_script("generate", f"ckpt_path={classifier}", check=False), "does not support generate")


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])  # onnx: run in onnxruntime
def test_export_round_trip_of_the_next_word_model_equals_the_checkpoint(next_word_run, tmp_path, fmt):
    # the classifier's round trip is the shared tests/test_export.py's, in every format
    assert exported_round_trip(next_word_run, fmt, tmp_path, NEXT_WORD) <= 1e-5
