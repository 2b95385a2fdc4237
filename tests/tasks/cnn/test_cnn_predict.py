"""`predict` on the image classifier: PNG, JPEG and CIFAR-10 batch files, as a user writes them."""

from __future__ import annotations

import csv

import numpy as np
import torch
from PIL import Image

from lightning_template.tasks.cnn.synthetic import make_synthetic_images
from lightning_template_core.testing import console_script, expect_user_error
from lightning_template_core.testing.runs import inference_for, tiny_overrides, trained_model

TINY = tiny_overrides(__file__)


def test_predict_gives_the_classes_of_the_models_own_forward_pass(fitted, tmp_path):
    run = fitted("cnn")
    checkpoint = run.run_dir / "checkpoints" / "last.ckpt"
    images, labels = make_synthetic_images(6, seed=11)
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i, image in enumerate(images[:4]):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"image{i}.png")
    Image.fromarray(images[4].transpose(1, 2, 0)).resize((57, 41)).save(folder / "resized.jpg")
    records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(len(images), -1)], axis=1)
    records.tofile(folder / "test_batch.bin")
    (folder / "notes.txt").write_text("not an image")

    done = console_script("predict", f"ckpt_path={checkpoint}", f"input={folder}", f"output={tmp_path / 'p.csv'}")
    rows = {row["input"]: row for row in csv.DictReader((tmp_path / "p.csv").open())}
    assert len(rows) == 4 + 1 + 6 and str(folder / "notes.txt") not in rows
    assert "1 unreadable input(s)" in " ".join(done.stderr.split()) and "notes.txt" in done.stderr

    trained, cfg = trained_model(checkpoint, TINY)
    hooks = inference_for(trained, cfg)
    with torch.no_grad():
        logits = trained.model(hooks.normalised(torch.from_numpy(images)))
    expected = [trained.description.classes[i] for i in logits.argmax(-1)]
    probabilities = torch.softmax(logits.double(), -1).max(-1).values
    for i in range(4):
        row = rows[str(folder / f"image{i}.png")]
        assert row["class"] == expected[i] and abs(float(row["probability"]) - probabilities[i].item()) < 1e-6
    for i in range(6):
        assert rows[f"{folder / 'test_batch.bin'}#{i}"]["class"] == expected[i]
    assert rows[str(folder / "resized.jpg")]["top_k"].count(";") == 2


def test_a_file_that_is_not_an_image_is_refused(fitted, tmp_path):
    checkpoint = fitted("cnn").run_dir / "checkpoints" / "last.ckpt"
    text = tmp_path / "photo.png"
    text.write_text("not an image")
    done = console_script("predict", f"ckpt_path={checkpoint}", f"input={text}", check=False)
    expect_user_error(done, "No input of input=", "cannot identify image file", "reads image files")
    missing = console_script("predict", f"ckpt_path={checkpoint}", f"input={tmp_path / 'nope'}", check=False)
    expect_user_error(missing, "does not exist")


def test_generate_refuses_a_classifier(fitted):
    checkpoint = fitted("cnn").run_dir / "checkpoints" / "last.ckpt"
    done = console_script("generate", f"ckpt_path={checkpoint}", check=False)
    expect_user_error(done, "does not support generate")
