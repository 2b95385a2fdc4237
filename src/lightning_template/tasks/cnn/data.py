"""DataModules for image classification: the embedded synthetic set, CIFAR-10 and folders of image files."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_template.tasks.cnn import cifar10
from lightning_template.tasks.cnn.dataset import ImageBatch, ImageDataset, normalise
from lightning_template.tasks.cnn.image_folder import ImageFolder, read_image_folder
from lightning_template.tasks.cnn.synthetic import CLASS_NAMES, make_synthetic_images
from lightning_template_core import (
    DataDescription,
    FileDataModule,
    Folds,
    GlobalBatchDataModule,
    ResumableLoader,
    UserError,
)

# The rows of each split in the arrays that hold them: {split: (images, labels, rows)}
Splits = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


class ImageDataModule(GlobalBatchDataModule):
    """Per-channel normalisation from the train split, crop and flip, over splits a subclass finds.

    Subclasses say where the images are (:meth:`load_splits`; a set of train and test
    arrays becomes splits with :meth:`split_arrays`, val drawn from train by ``seed``), what the classes
    are called, and how ``predict`` fits an image file to the input (``fit``). ``num_train``
    and ``num_test`` keep only the first images of each array (None: all of them).

    Batches leave the loaders as uint8 and become float on the device
    (:meth:`on_after_batch_transfer`), moved from pinned memory on a GPU. ``on_device``
    keeps the images themselves on the accelerator, as uint8, so batches are cut,
    cropped and flipped there and the host only draws the per-sample numbers: ``true``,
    ``false``, or ``auto`` (on a GPU, when the images take at most half its free memory).
    """

    class_names: tuple[str, ...]
    fit = "squash"  # see tasks/cnn/image_files.py

    def __init__(
        self,
        *,
        val_fraction: float = 0.1,
        folds: int | None = None,
        fold: int | None = 0,
        augment: bool = True,
        num_train: int | None = None,
        num_test: int | None = None,
        on_device: bool | str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if on_device not in (True, False, "auto"):
            raise UserError(f"data.on_device={on_device} must be true, false or auto.")
        self.on_device = on_device
        self._statistics: dict[torch.device, tuple[Tensor, Tensor]] = {}
        self.num_train, self.num_test = num_train, num_test
        if not 0 < val_fraction < 1:
            raise UserError(f"data.val_fraction={val_fraction} must be between 0 and 1 (exclusive).")
        self.val_fraction = val_fraction
        self.folds = Folds.from_settings(folds, fold)  # k-fold: validation is one fold (replaces val_fraction)
        self.augment = augment
        self.datasets: dict[str, ImageDataset] = {}

    @abstractmethod
    def load_splits(self) -> Splits:
        """The train, val and test images, labels and rows."""

    def split_arrays(self, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> Splits:
        """A set of train and test arrays (uint8 NCHW, int64) as splits: val drawn from train by ``seed`` (a
        fraction, or one of ``folds``)."""
        train_x, train_y = train_x[: self.num_train], train_y[: self.num_train]
        test_x, test_y = test_x[: self.num_test], test_y[: self.num_test]
        order = np.random.default_rng(self.seed).permutation(len(train_y))
        num_val = max(1, round(len(order) * self.val_fraction))
        train, val = (
            self.folds.split_rows(order) if self.folds else (np.sort(order[num_val:]), np.sort(order[:num_val]))
        )
        return {
            "train": (train_x, train_y, train),
            "val": (train_x, train_y, val),
            "test": (test_x, test_y, np.arange(len(test_y))),
        }

    def describe(self) -> DataDescription:
        self.setup()  # the normalisation comes from the training split
        train = self.datasets["train"]
        normalisation = {"mean": train.mean.flatten().tolist(), "std": train.std.flatten().tolist()}
        return DataDescription(
            item_shape=tuple(train.images.shape[1:]),
            classes=self.class_names,
            extra={"normalisation": normalisation, "fit": self.fit},
        )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = self.load_splits()
        mean, std = channel_statistics(*splits["train"][::2])
        self.datasets = {
            split: ImageDataset(
                images,
                torch.as_tensor(labels),
                mean,
                std,
                rows=rows,
                augment=self.augment and split == "train",
                seed=self.seed,
                normalised=False,
            )
            for split, (images, labels, rows) in splits.items()
        }

    def _device(self) -> torch.device:
        """Where the Trainer trains (the CPU without one)."""
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def place(self) -> bool:
        """Put the images on the accelerator if ``on_device`` says so (once; splits that share an array share
        its copy); whether they are there."""
        device = self._device()
        if self.on_device is False or (self.on_device == "auto" and (device.type != "cuda" or self.num_workers)):
            return False
        if self.num_workers:
            raise UserError(
                "data.on_device=true keeps the images on the device, where loader workers cannot read them: set"
                " data.num_workers=0 (the batches are cut on the device; workers would have nothing to do)."
            )
        if all(isinstance(d.images, Tensor) and d.images.device == device for d in self.datasets.values()):
            return True
        arrays = {id(dataset.images): dataset.images for dataset in self.datasets.values()}
        needed = sum(array.nbytes if isinstance(array, np.ndarray) else array.numel() for array in arrays.values())
        free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
        if free is not None and needed > free // 2:
            if self.on_device == "auto":
                return False
            raise UserError(
                f"data.on_device=true: the images take {needed / 2**30:.1f} GiB, more than half the free memory of"
                f" {device} ({free / 2**30:.1f} GiB). Set data.on_device=false (batches then come from the host)."
            )
        placed = {key: torch.as_tensor(np.asarray(array)).to(device) for key, array in arrays.items()}
        for dataset in self.datasets.values():
            dataset.images = placed[id(dataset.images)]
        return True

    def loader_options(self) -> dict:
        """Pinned host batches for a GPU (uint8, a quarter of float32's bytes); nothing to pin when the images
        are on the device already."""
        options = super().loader_options()
        resident = any(isinstance(d.images, Tensor) and d.images.device.type != "cpu" for d in self.datasets.values())
        options["pin_memory"] = not resident and (self.pin_memory or self._device().type == "cuda")
        return options

    def on_after_batch_transfer(self, batch: ImageBatch, dataloader_idx: int) -> ImageBatch:
        """The uint8 images of a batch as the network reads them, normalised on the device they reached, in the
        run's precision."""
        if batch.images.dtype != torch.uint8:
            return batch
        device = batch.images.device
        if device not in self._statistics:
            train = self.datasets["train"]
            self._statistics[device] = (train.mean.to(device), train.std.to(device))
        images = normalise(batch.images, *self._statistics[device])
        if self.trainer is not None:  # what Lightning does to float inputs before the transfer (64-true: float64)
            images = self.trainer.precision_plugin.convert_input(images)
        return batch._replace(images=images)

    def train_dataloader(self) -> ResumableLoader:
        self.place()
        return self.train_loader(self.datasets["train"])

    def val_dataloader(self) -> DataLoader:
        self.place()
        return self.eval_loader(self.datasets["val"])

    def test_dataloader(self) -> DataLoader:
        self.place()
        return self.eval_loader(self.datasets["test"])


def channel_statistics(images: np.ndarray, rows: np.ndarray, chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """Mean and (unbiased) standard deviation per channel of ``images[rows] / 255``, read ``chunk`` rows at a
    time: a memory-mapped set is never held whole."""
    sums = np.zeros(images.shape[1], dtype=np.float64)
    squares = np.zeros(images.shape[1], dtype=np.float64)
    for start in range(0, len(rows), chunk):
        pixels = np.asarray(images[rows[start : start + chunk]], dtype=np.float64) / 255
        sums += pixels.sum(axis=(0, 2, 3))
        squares += np.square(pixels).sum(axis=(0, 2, 3))
    count = len(rows) * images.shape[2] * images.shape[3]
    mean = sums / count
    variance = (squares - count * mean**2) / max(count - 1, 1)
    return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(np.maximum(variance, 0))).float()


class SyntheticImageDataModule(ImageDataModule):
    """The embedded default: shapes and textures drawn from ``seed`` (see ``synthetic``)."""

    class_names = CLASS_NAMES

    def __init__(self, num_train: int = 20000, num_test: int = 2000, **kwargs) -> None:
        super().__init__(num_train=num_train, num_test=num_test, **kwargs)

    def load_splits(self) -> Splits:
        images, labels = make_synthetic_images(self.num_train + self.num_test, self.seed)
        n = self.num_train
        return self.split_arrays(images[:n], labels[:n], images[n:], labels[n:])


class Cifar10DataModule(FileDataModule, ImageDataModule):
    """CIFAR-10 from ``root/cifar-10-batches-bin`` (the official binary format)."""

    class_names = cifar10.CLASS_NAMES

    def prepare_data(self) -> None:
        if self.download:
            cifar10.download(self.root)

    def load_splits(self) -> Splits:
        cifar10.check_files(self.root)  # every file missing or damaged, named at once
        train, test = (
            cifar10.read_split(self.root, cifar10.TRAIN_FILES),
            cifar10.read_split(self.root, cifar10.TEST_FILES),
        )
        return self.split_arrays(*train, *test)


class ImageFolderDataModule(FileDataModule, ImageDataModule):
    """Image files under ``root/<class>/`` (the ImageFolder layout), decoded once into a cache; see
    ``image_folder``. ``download=True`` is refused: there is nothing to fetch."""

    fit = "crop"

    def __init__(
        self,
        image_size: int = 64,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        cache_dir: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(val_fraction=val_fraction, **kwargs)
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
            raise UserError(f"data.image_size={image_size!r} must be an integer of at least 8 (pixels per side).")
        if not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise UserError(
                f"data.test_fraction={test_fraction} must be in [0, 1) and leave images for training with"
                f" data.val_fraction={val_fraction} (their sum below 1)."
            )
        self.image_size, self.test_fraction, self.cache_dir = image_size, test_fraction, cache_dir
        self._folder: ImageFolder | None = None

    def prepare_data(self) -> None:
        if self.download:
            raise UserError(
                f"data.download=true: an image folder is yours, there is nothing to fetch. Put the images under"
                f" data.root={self.root} as <class>/<image> files and run with data.download=false."
            )
        self._read()  # decodes into the cache once, on the first process of a machine

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self._read().classes)

    def load_splits(self) -> Splits:
        folder = self._read()
        return {split: (folder.images, folder.labels, rows) for split, rows in folder.rows.items()}

    def _read(self) -> ImageFolder:
        if self._folder is None:
            self._folder = read_image_folder(
                self.root, self.image_size, self.seed, self.val_fraction, self.test_fraction, self.cache_dir, self.folds
            )
        return self._folder
