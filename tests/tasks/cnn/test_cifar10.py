"""CIFAR-10's binary format on files and archives built byte for byte like the real ones, at the official size."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_template.tasks.cnn import cifar10
from lightning_template.tasks.cnn.data import Cifar10DataModule
from lightning_template_core import UserError
from lightning_template_core.testing import console_script, expect_user_error

SMALL = {"num_train": 200, "num_test": 40}  # the DataModule keeps the first images: no 50,000-image statistics


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """The records, then all-zero ones (black airplanes) up to the official 10,000.

    The zeros are left as a hole of a sparse file, so an official-size file costs the disk
    only the records written.
    """
    data = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(labels), -1)], axis=1)
    with path.open("wb") as out:
        out.write(data.astype(np.uint8).tobytes())
        out.truncate(cifar10.FILE_BYTES)


def make_cifar(root: Path, per_file: int = 12, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write cifar-10-batches-bin/ under root, random first records; return what was written."""
    rng = np.random.default_rng(seed)
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    written = {}
    for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
        images = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_file)
        write_batch(folder / name, images, labels)
        written[name] = (images, labels)
    return written


def make_archive(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "source"
    make_cifar(source)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / cifar10.FOLDER, arcname=cifar10.FOLDER)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_labels_and_pixels_round_trip_exactly(tmp_path):
    written = make_cifar(tmp_path)
    for name, (images, labels) in written.items():
        read_images, read_labels = cifar10.read_batch_file(tmp_path / cifar10.FOLDER / name)
        assert np.array_equal(read_images[:12], images) and np.array_equal(read_labels[:12], labels)
        assert not read_images[12:].any() and not read_labels[12:].any()
    train_images, train_labels = cifar10.read_split(tmp_path, cifar10.TRAIN_FILES)
    assert train_images.shape == (50_000, 3, 32, 32)
    assert np.array_equal(train_labels[10_000:10_012], written["data_batch_2.bin"][1])


def test_channel_planes_follow_the_official_layout(tmp_path):
    # one record: label 3, then 1024 red, 1024 green, 1024 blue bytes, rows of 32
    record = bytes([3]) + bytes([10] * 1024) + bytes(range(256)) * 4 + bytes([30] * 1024)
    path = tmp_path / "one.bin"
    path.write_bytes(record)
    images, labels = cifar10.read_batch_file(path)
    assert labels.tolist() == [3]
    assert (images[0, 0] == 10).all() and (images[0, 2] == 30).all()
    assert images[0, 1, 0, :5].tolist() == [0, 1, 2, 3, 4] and images[0, 1, 8, 0] == 0


@pytest.mark.parametrize(
    ("size", "held"),
    [
        (cifar10.FILE_BYTES // 2, "5,000 images"),  # cut on a record boundary: reads as 5,000 good images
        (cifar10.FILE_BYTES - 100, "9,999 images and 2,973 bytes of a cut one"),
        (cifar10.FILE_BYTES + cifar10.RECORD_BYTES, "10,001 images"),
    ],
)
def test_a_file_of_another_size_is_refused_naming_it_and_the_fix(tmp_path, size, held):
    make_cifar(tmp_path)
    path = tmp_path / cifar10.FOLDER / "data_batch_3.bin"
    with path.open("r+b") as handle:
        handle.truncate(size)
    with pytest.raises(UserError) as error:
        Cifar10DataModule(root=str(tmp_path), global_batch_size=8, **SMALL).setup()
    message = str(error.value)
    assert message.startswith(f"CIFAR-10 in {path.parent} is damaged: each file of the binary version is 30,730,000")
    assert f"data_batch_3.bin is {size:,} bytes, {held}: cut short" in message and "data.download=true" in message
    assert cifar10.URL in message


def test_every_missing_or_damaged_file_is_named_in_one_message(tmp_path):
    """A train file and the test file missing: both named at once, not the second on the next run."""
    make_cifar(tmp_path)
    for name in ("data_batch_2.bin", "test_batch.bin"):
        (tmp_path / cifar10.FOLDER / name).unlink()
    with pytest.raises(UserError, match=r"lacks data_batch_2\.bin, test_batch\.bin\. Put"):
        Cifar10DataModule(root=str(tmp_path), global_batch_size=8, **SMALL).setup()
    make_cifar(tmp_path / "second")
    for name in ("data_batch_5.bin", "test_batch.bin"):
        (tmp_path / "second" / cifar10.FOLDER / name).write_bytes(bytes(cifar10.RECORD_BYTES))
    with pytest.raises(UserError, match=r"but data_batch_5\.bin is 3,073 bytes, 1 image; test_batch\.bin is 3,073"):
        Cifar10DataModule(root=str(tmp_path / "second"), global_batch_size=8, **SMALL).setup()


def test_download_replaces_a_folder_with_a_cut_file(tmp_path):
    archive, md5 = make_archive(tmp_path)
    root = tmp_path / "data"
    make_cifar(root, seed=1)
    cut = root / cifar10.FOLDER / "test_batch.bin"
    cut.write_bytes(cut.read_bytes()[: 5 * cifar10.RECORD_BYTES])
    cifar10.download(root, url=archive.as_uri(), md5=md5)
    assert cut.stat().st_size == cifar10.FILE_BYTES
    assert np.array_equal(
        cifar10.read_split(root, cifar10.TEST_FILES)[1], cifar10.read_split(tmp_path / "source", cifar10.TEST_FILES)[1]
    )


def test_missing_data_says_where_to_put_it(tmp_path):
    with pytest.raises(UserError, match=r"CIFAR-10 not found: .*cifar-10-batches-bin lacks data_batch_1.bin"):
        cifar10.read_split(tmp_path, cifar10.TRAIN_FILES)


def test_download_checks_the_checksum_and_extracts(tmp_path):
    archive, md5 = make_archive(tmp_path)
    root = tmp_path / "data"
    cifar10.download(root, url=archive.as_uri(), md5=md5)
    assert len(cifar10.read_split(root, cifar10.TEST_FILES)[1]) == 10_000
    assert [p.name for p in root.iterdir()] == [cifar10.FOLDER]


def test_corrupt_download_leaves_nothing_behind(tmp_path):
    archive, _ = make_archive(tmp_path)
    root = tmp_path / "data"
    with pytest.raises(UserError, match="has MD5"):
        cifar10.download(root, url=archive.as_uri(), md5="0" * 32)
    assert list(root.iterdir()) == []


def test_unreachable_download_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="Could not download CIFAR-10"):
        cifar10.download(tmp_path, url=(tmp_path / "absent.tar.gz").as_uri())


def test_datamodule_splits_and_normalises(tmp_path):
    make_cifar(tmp_path, per_file=40)
    datamodule = Cifar10DataModule(root=str(tmp_path), global_batch_size=8, val_fraction=0.25, seed=3, **SMALL)
    datamodule.setup()
    sizes = {split: len(dataset) for split, dataset in datamodule.datasets.items()}
    assert sizes == {"train": 150, "val": 50, "test": 40}
    train = datamodule.datasets["train"]
    pixels = torch.from_numpy(train.images[train.rows]).double() / 255  # the train split's images
    normalised = (pixels - train.mean.double()) / train.std.double()
    assert normalised.mean().abs() < 1e-6
    # the split is fixed by the seed
    again = Cifar10DataModule(root=str(tmp_path), global_batch_size=8, val_fraction=0.25, seed=3, **SMALL)
    again.setup()
    assert np.array_equal(again.datasets["val"].split_labels.numpy(), datamodule.datasets["val"].split_labels.numpy())


@pytest.mark.smoke
def test_fit_cnn_cifar10_runs_on_files_in_the_official_format(fit, tmp_path):
    make_cifar(tmp_path / "data", per_file=40)
    small = [f"data.{key}={value}" for key, value in SMALL.items()]
    run = fit(
        "experiment=cnn_cifar10",
        f"data.root={tmp_path / 'data'}",
        *small,
        "model.net.widths=[8,16]",
        "debug=fast_dev_run",
    )
    assert run.summary()["global_steps"] == 1 and "test/acc" in run.summary()["test"]


def test_fit_on_a_file_cut_on_a_record_boundary_exits_2_naming_it(tmp_path):
    make_cifar(tmp_path / "data")
    path = tmp_path / "data" / cifar10.FOLDER / "data_batch_1.bin"
    with path.open("r+b") as handle:
        handle.truncate(cifar10.FILE_BYTES // 2)
    run_dir = tmp_path / "run"
    run = console_script(
        "fit",
        "experiment=cnn_cifar10",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "trainer.max_steps=1",
        f"hydra.run.dir={run_dir}",
        check=False,
    )
    expect_user_error(run, f"{path.parent} is damaged", "data_batch_1.bin is 15,365,000 bytes, 5,000 images")
    assert not (run_dir / "summary.json").exists()


def test_fit_without_cifar_is_one_paragraph(fit, tmp_path):
    run = fit("experiment=cnn_cifar10", f"data.root={tmp_path}/absent", "debug=fast_dev_run", check=False)
    assert run.returncode == 2 and "Traceback" not in run.output, run.output[-3000:]
    assert "CIFAR-10 not found" in run.stderr and "data.download=true" in " ".join(run.stderr.split())
