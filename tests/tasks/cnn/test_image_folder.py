"""Folders of image files (experiment=cnn_folder): modes, sizes, the decoded cache, bad folders, training on one."""

from __future__ import annotations

import csv
import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image
from test_cnn_global_batch import DECOMPOSITIONS, EXACT

from lightning_template.tasks.cnn.data import ImageFolderDataModule
from lightning_template.tasks.cnn.image_files import read_pixels
from lightning_template.tasks.cnn.image_folder import read_image_folder
from lightning_template_core import UserError, cached_arrays
from lightning_template_core.testing import expect_user_error, max_abs_difference, run_module
from lightning_template_core.testing.runs import (
    QUIET,
    checkpoint,
    compose_fit,
    describe_data,
    identical,
    keep_every,
    run_to_end,
    weights,
)

# Each class is a colour; in greyscale modes its luminance (red 80, green 135, blue 46) tells it too.
COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
# (mode the image is made in, file format): every kind the folder reader converts
KINDS = [
    ("RGB", "JPEG"),
    ("L", "PNG"),
    ("P", "PNG"),
    ("RGBA", "PNG"),
    ("I;16", "PNG"),
    ("CMYK", "JPEG"),
    ("RGB", "WEBP"),
]
EXTENSION = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def write_image(path: Path, colour: tuple[int, int, int], mode: str, fmt: str, size: tuple[int, int], seed: int):
    """A noisy image of ``colour`` in ``mode``, saved as ``fmt``."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257  # the full 16-bit range
        image = Image.fromarray(grey)
    elif mode == "P":
        image = image.quantize(16)
    elif mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt)


def write_image_folder(root: Path, per_class: int = 14, damaged: bool = True) -> Path:
    """Real files of every kind and of several sizes; with ``damaged``, a cut JPEG and a text file named .png."""
    for label, (name, colour) in enumerate(COLOURS.items()):
        for i in range(per_class):
            mode, fmt = KINDS[(i + label) % len(KINDS)]
            size = (16 + 7 * (i % 5), 16 + 5 * ((i + 2) % 4))
            write_image(root / name / f"{i:03d}{EXTENSION[fmt]}", colour, mode, fmt, size, seed=100 * label + i)
    if damaged:
        whole = (root / "red" / "000.jpg").read_bytes()
        (root / "red" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
        (root / "blue" / "notes.png").write_text("not an image\n")
    return root


def test_every_mode_becomes_8_bit_rgb_and_16_bit_is_scaled_not_clipped(tmp_path):
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(np.full((8, 8), 128 * 257, dtype=np.uint16)).save(grey16)  # mid-grey in 16 bits
    assert Image.open(grey16).mode.startswith("I")
    assert np.all(read_pixels(grey16, 8) == 128)
    palette = tmp_path / "palette.png"
    Image.new("RGB", (8, 8), (10, 200, 30)).quantize(4).save(palette)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 8), (10, 200, 30, 0)).save(rgba)  # fully transparent: its colours are kept
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("RGB", (8, 8), (10, 200, 30)).convert("CMYK").save(cmyk, quality=100)
    for path in (palette, rgba, cmyk):
        pixels = read_pixels(path, 8)
        assert pixels.shape == (3, 8, 8) and pixels.dtype == np.uint8
        assert np.abs(pixels.reshape(3, -1).mean(axis=1) - (10, 200, 30)).max() < 12, path.name


def test_the_shorter_side_is_scaled_then_the_centre_square_kept(tmp_path):
    # 48 x 16: thirds black, white, black; the centre square is the white third
    pixels = np.zeros((16, 48, 3), dtype=np.uint8)
    pixels[:, 16:32] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    crop = read_pixels(tmp_path / "wide.png", 8, "crop")
    squash = read_pixels(tmp_path / "wide.png", 8, "squash")
    assert crop.shape == squash.shape == (3, 8, 8)
    assert crop[:, :, 1:-1].min() > 200  # all white inside (the edge columns blend with the black)
    assert squash[:, :, 0].max() < 60 and squash[:, :, 4].min() > 200  # squashed: the thirds survive


def test_a_folder_is_decoded_once_and_unreadable_files_are_listed_at_every_start(tmp_path):
    root = write_image_folder(tmp_path / "images")
    with pytest.warns(UserWarning) as caught:
        folder = read_image_folder(root, 16, seed=0, val_fraction=0.2, test_fraction=0.2)
    reported = " ".join(str(w.message) for w in caught)
    assert "red/cut.jpg" in reported and "blue/notes.png" in reported and "2 file(s)" in reported
    assert folder.classes == ["blue", "green", "red"] and folder.images.shape[1:] == (3, 16, 16)
    rows = np.concatenate(list(folder.rows.values()))
    assert len(rows) == len(set(rows.tolist())) == 3 * 14  # every readable image in one split, the bad ones in none
    (cache,) = (root / ".cache").glob("images-*")
    written = (cache / "manifest.json").stat().st_mtime_ns
    with pytest.warns(UserWarning, match="cut.jpg"):
        again = read_image_folder(root, 16, seed=0, val_fraction=0.2, test_fraction=0.2)
    assert (cache / "manifest.json").stat().st_mtime_ns == written  # mapped, not decoded again
    assert np.array_equal(again.images, folder.images) and isinstance(again.images, np.memmap)
    # the colours survive every mode: each colour image's strongest channel is its class's (greyscale ones: grey)
    for row in rows:
        mean = folder.images[row].reshape(3, -1).mean(axis=1)
        strongest = ("red", "green", "blue")[int(np.argmax(mean))]
        assert strongest == folder.classes[folder.labels[row]] or np.ptp(mean) < 1, (row, mean)


def test_a_changed_source_or_a_damaged_cache_is_decoded_again(tmp_path, caplog):
    root = write_image_folder(tmp_path / "images", per_class=4, damaged=False)
    first = np.array(read_image_folder(root, 16, seed=0, val_fraction=0.25, test_fraction=0.25).images)
    (old,) = (root / ".cache").glob("images-*")
    (old / "images.bin").write_bytes((old / "images.bin").read_bytes()[:100])  # cut short
    with caplog.at_level("INFO"):
        repaired = read_image_folder(root, 16, seed=0, val_fraction=0.25, test_fraction=0.25)
    assert "is damaged" in caplog.text and np.array_equal(repaired.images, first)
    write_image(root / "red" / "000.jpg", (0, 0, 0), "RGB", "JPEG", (20, 20), seed=1)  # replaced by a black image
    changed = read_image_folder(root, 16, seed=0, val_fraction=0.25, test_fraction=0.25)
    assert len(list((root / ".cache").glob("images-*"))) == 2  # another key: the stale cache is never read
    assert not np.array_equal(np.array(changed.images), first)


def test_a_full_disk_while_caching_keeps_nothing_and_says_so(tmp_path):
    def fill_the_disk(writer):
        writer.array("images", (10, 3, 4, 4), np.uint8)[:5] = 1
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match=r"disk filled .* nothing of it is kept"):
        cached_arrays(tmp_path, "images", "k", fill_the_disk, "a test set")
    assert [p.name for p in tmp_path.iterdir()] == [".images-k.lock"]
    built = cached_arrays(tmp_path, "images", "k", lambda w: {"n": len(w.array("images", (2,), np.int64))}, "again")
    assert built.info == {"n": 2} and json.loads((built.folder / "manifest.json").read_text())["format"] >= 1


def folder_data(root: Path, *overrides: str) -> ImageFolderDataModule:
    cfg = compose_fit(["experiment=cnn_folder", f"data.root={root}", "data.image_size=16", *overrides])
    return instantiate(cfg.data)


def test_the_datamodule_describes_the_folder_and_batches_it(tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=6, damaged=False)
    datamodule = folder_data(root, "data.global_batch_size=4")
    description = describe_data(datamodule)
    assert description.item_shape == (3, 16, 16) and description.classes == ("blue", "green", "red")
    assert description.extra["fit"] == "crop" and len(description.extra["normalisation"]["mean"]) == 3
    images, labels, _ = next(iter(datamodule.train_dataloader()))
    assert images.shape == (4, 3, 16, 16) and labels.dtype.is_floating_point is False


def _class_folder_with_a_stray_file(root: Path) -> None:
    write_image_folder(root, per_class=3, damaged=False)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("red/000.jpg\nred/404.jpg\n")


BAD_FOLDERS = {
    "missing root": (lambda root: None, "is not a folder"),
    "files in the root": (
        lambda root: write_image(root / "a.png", (1, 2, 3), "RGB", "PNG", (8, 8), 0),
        r"1 image file\(s\) directly in it but no class folders",
    ),
    "an empty class folder": (
        lambda root: (write_image_folder(root, per_class=2, damaged=False), (root / "empty").mkdir()),
        r"The class folder\(s\) empty",
    ),
    "a split file naming a missing file": (_class_folder_with_a_stray_file, r"lists 1 image\(s\) that data\.root"),
    "only unreadable files": (
        lambda root: [(root / c).mkdir(parents=True) or (root / c / "x.png").write_text("text") for c in "ab"],
        "None of the 2 image files",
    ),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_a_bad_folder_is_one_paragraph_naming_the_fix(tmp_path, case):
    make, message = BAD_FOLDERS[case]
    make(tmp_path / "images")
    with pytest.raises(UserError, match=message):
        describe_data(folder_data(tmp_path / "images"))


def test_an_unwritable_cache_dir_and_a_download_are_refused(tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=2, damaged=False)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match=r"data\.cache_dir=.*Set data\.cache_dir to a folder you can write"):
        describe_data(folder_data(root, f"data.cache_dir={tmp_path / 'a-file' / 'cache'}"))
    with pytest.raises(UserError, match="there is nothing to fetch"):
        describe_data(folder_data(root, "data.download=true"))
    assert not (root / ".cache").exists()


@pytest.mark.slow
@pytest.mark.smoke
def test_fit_trains_on_an_image_folder_beats_chance_and_predict_reads_its_files(fit, tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=30)
    run = fit(*on_the_folder(root), "data.test_fraction=0.3", "data.global_batch_size=16", "trainer.max_epochs=10")
    said = " ".join(run.output.split())
    assert "red/cut.jpg" in said and "blue/notes.png" in said and "2 unreadable file(s) left out" in said
    assert run.summary()["test"]["test/acc"] >= 0.8  # three classes: chance is 1/3
    checkpoint = run.run_dir / "checkpoints" / "last.ckpt"
    run_module(
        "predict",
        f"ckpt_path={checkpoint}",
        f"input={root / 'green'}",
        f"output={tmp_path / 'p.csv'}",
        run_dir=run.run_dir,
    )
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == 30 and sum(row["class"] == "green" for row in rows) >= 24


@pytest.fixture(scope="module")
def guarantee_folder(tmp_path_factory) -> Path:
    """120 images: three optimizer steps an epoch at global batch 32."""
    return write_image_folder(tmp_path_factory.mktemp("guarantees") / "images", per_class=40)


def on_the_folder(root: Path) -> list[str]:
    return ["experiment=cnn_folder", f"data.root={root}", "data.image_size=16", "model.net.widths=[8,16]", *QUIET]


@pytest.mark.slow
@pytest.mark.ddp
def test_every_decomposition_gives_the_same_weights_on_an_image_folder(fit, guarantee_folder):
    """The central promise on this data too (the same decompositions as on the other CNN data)."""
    exact = [*on_the_folder(guarantee_folder), *EXACT[EXACT.index("model.net.norm=group") :]]
    runs = {name: fit(*exact, *layout, "trainer.max_steps=5", name=name) for name, layout in DECOMPOSITIONS.items()}
    reference = runs["32x1x1"].weights()
    for name, run in runs.items():
        assert run.summary()["global_steps"] == 5
        difference = max_abs_difference(reference, run.weights())
        assert difference < 1e-9, f"{name} differs from 32x1x1 by {difference:.3g}"
    other = fit(*exact, "data.global_batch_size=16", "trainer.max_steps=5", name="global16")
    assert max_abs_difference(reference, other.weights()) > 1e-4


@pytest.mark.slow
def test_resuming_on_an_image_folder_is_bit_identical(tmp_path, guarantee_folder):
    """The shipped experiment's schedule and callbacks, resumed from a periodic checkpoint."""
    common = [*on_the_folder(guarantee_folder), "data.global_batch_size=16", "trainer.max_steps=12", *keep_every(6)]
    straight = run_to_end(tmp_path / "straight", *common)
    resumed = run_to_end(tmp_path / "resumed", *common, f"ckpt_path={straight.run_dir / 'checkpoints' / 's0006.ckpt'}")
    assert max_abs_difference(weights(straight.run_dir, "s0006.ckpt"), weights(straight.run_dir)) > 1e-4
    assert identical(weights(straight.run_dir), weights(resumed.run_dir))
    # the same on the shipped checkpoint callback (monitor kept), from the checkpoint of the first epoch's end
    shipped = [*on_the_folder(guarantee_folder), "data.global_batch_size=16", "trainer.max_steps=12"]
    shipped_straight = run_to_end(tmp_path / "shipped", *shipped, "callbacks.model_checkpoint.save_top_k=-1")
    (epoch_end,) = (shipped_straight.run_dir / "checkpoints").glob("best-epoch000-*.ckpt")
    shipped_resumed = run_to_end(tmp_path / "shipped-resumed", *shipped, f"ckpt_path={epoch_end}")
    assert identical(weights(shipped_straight.run_dir), weights(shipped_resumed.run_dir))


@pytest.mark.slow
def test_a_run_continues_only_on_the_data_it_started_on(tmp_path, guarantee_folder):
    """Started on fold 0 of 3, a continuation on fold 1 is refused naming data.fold; on a copy of the folder with
    two class folders swapped (the same size), naming the files; continue_on_other_data=true lets it go on."""
    folded = [*on_the_folder(guarantee_folder), "data.folds=3", "data.global_batch_size=16", "test_after_fit=false"]
    every = ["trainer.max_steps=6", *keep_every(3)]
    run = run_to_end(tmp_path / "run", *folded, "data.fold=0", *every)
    step_3 = f"ckpt_path={run.run_dir / 'checkpoints' / 's0003.ckpt'}"

    def continued(name: str, *overrides: str):
        return run_module(
            "fit", *overrides, *every, step_3, f"hydra.run.dir={tmp_path / name}", run_dir=tmp_path / name, check=False
        )

    other_fold = continued("other-fold", *folded, "data.fold=1")
    expect_user_error(other_fold, "trained on other data", "data.fold was 0, now 1", "continue_on_other_data=true")
    assert not (tmp_path / "other-fold" / "checkpoints").exists()

    swapped = tmp_path / "swapped-images"
    shutil.copytree(guarantee_folder, swapped)
    first, second = sorted(p.name for p in swapped.iterdir() if p.is_dir() and not p.name.startswith("."))[:2]
    (swapped / first).rename(swapped / "tmp")
    (swapped / second).rename(swapped / first)
    (swapped / "tmp").rename(swapped / second)
    moved = [
        *on_the_folder(swapped),
        "data.folds=3",
        "data.global_batch_size=16",
        "test_after_fit=false",
        "data.fold=0",
    ]
    expect_user_error(continued("swapped", *moved), "of the data's files differ under data.root")
    allowed = continued("allowed", *moved, "continue_on_other_data=true")
    assert allowed.returncode == 0, allowed.output[-3000:]
    assert "Continuing on other data" in allowed.output and checkpoint(tmp_path / "allowed")["global_step"] == 6
    same = continued("same", *folded, "data.fold=0")
    assert same.returncode == 0 and identical(weights(run.run_dir), weights(tmp_path / "same"))
