"""DataModules for 32x32 image classification: the embedded synthetic set and CIFAR-10."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from torch.utils.data import DataLoader

from lightning_template.batching.data_description import DataDescription
from lightning_template.batching.datamodule import FileDataModule, GlobalBatchDataModule
from lightning_template.batching.loader import ResumableLoader
from lightning_template.errors import UserError
from lightning_template.tasks.cnn import cifar10
from lightning_template.tasks.cnn.dataset import ImageDataset
from lightning_template.tasks.cnn.synthetic import CLASS_NAMES, make_synthetic_images


class ImageDataModule(GlobalBatchDataModule):
    """Train/val split from ``seed``, per-channel normalisation from the train split, crop and flip.

    Subclasses say where the arrays come from (:meth:`load_arrays`) and what the classes
    are called; ``num_train`` and ``num_test`` keep only the first images of each split
    (None: all of them).
    """

    class_names: tuple[str, ...]

    def __init__(
        self,
        *,
        val_fraction: float = 0.1,
        augment: bool = True,
        num_train: int | None = None,
        num_test: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_train, self.num_test = num_train, num_test
        if not 0 < val_fraction < 1:
            raise UserError(f"data.val_fraction={val_fraction} must be between 0 and 1 (exclusive).")
        self.val_fraction = val_fraction
        self.augment = augment
        self.datasets: dict[str, ImageDataset] = {}

    @abstractmethod
    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Train images, train labels, test images, test labels (uint8 NCHW, int64)."""

    def describe(self) -> DataDescription:
        self.setup()  # the normalisation comes from the training split
        train = self.datasets["train"]
        normalisation = {"mean": train.mean.flatten().tolist(), "std": train.std.flatten().tolist()}
        return DataDescription(
            item_shape=tuple(train.images.shape[1:]), classes=self.class_names, extra={"normalisation": normalisation}
        )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        train_x, train_y, test_x, test_y = self.load_arrays()
        train_x, train_y = train_x[: self.num_train], train_y[: self.num_train]
        test_x, test_y = test_x[: self.num_test], test_y[: self.num_test]
        order = np.random.default_rng(self.seed).permutation(len(train_y))
        num_val = max(1, round(len(order) * self.val_fraction))
        val_idx, train_idx = np.sort(order[:num_val]), np.sort(order[num_val:])
        pixels = torch.from_numpy(train_x[train_idx]).double().div_(255)
        mean, std = pixels.mean(dim=(0, 2, 3)).float(), pixels.std(dim=(0, 2, 3)).float()

        def dataset(images: np.ndarray, labels: np.ndarray, augment: bool = False) -> ImageDataset:
            return ImageDataset(
                torch.from_numpy(images), torch.from_numpy(labels), mean, std, augment=augment, seed=self.seed
            )

        self.datasets = {
            "train": dataset(train_x[train_idx], train_y[train_idx], augment=self.augment),
            "val": dataset(train_x[val_idx], train_y[val_idx]),
            "test": dataset(test_x, test_y),
        }

    def train_dataloader(self) -> ResumableLoader:
        return self.train_loader(self.datasets["train"])

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader(self.datasets["val"])

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader(self.datasets["test"])


class SyntheticImageDataModule(ImageDataModule):
    """The embedded default: shapes and textures drawn from ``seed`` (see ``synthetic``)."""

    class_names = CLASS_NAMES

    def __init__(self, num_train: int = 20000, num_test: int = 2000, **kwargs) -> None:
        super().__init__(num_train=num_train, num_test=num_test, **kwargs)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        images, labels = make_synthetic_images(self.num_train + self.num_test, self.seed)
        n = self.num_train
        return images[:n], labels[:n], images[n:], labels[n:]


class Cifar10DataModule(FileDataModule, ImageDataModule):
    """CIFAR-10 from ``root/cifar-10-batches-bin`` (the official binary format)."""

    class_names = cifar10.CLASS_NAMES

    def prepare_data(self) -> None:
        if self.download:
            cifar10.download(self.root)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (*cifar10.read_split(self.root, cifar10.TRAIN_FILES), *cifar10.read_split(self.root, cifar10.TEST_FILES))
