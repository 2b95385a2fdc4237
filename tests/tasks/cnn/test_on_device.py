"""Images kept on the device (data.on_device) and uint8 batches normalised after the transfer: the same float32
batches, bit for bit, as the host path, so a run trains the same model either way (checked here on the CPU,
where the device path runs on CPU tensors)."""

from __future__ import annotations

import lightning.pytorch as L
import numpy as np
import pytest
import torch

from lightning_template.tasks.cnn.data import SyntheticImageDataModule
from lightning_template.tasks.cnn.dataset import normalise
from lightning_template_core import SampleKey
from lightning_template_core.testing.runs import identical, run_to_end, tiny_overrides, weights

TINY = tiny_overrides(__file__)


def datamodule(on_device: bool) -> SyntheticImageDataModule:
    data = SyntheticImageDataModule(num_train=300, num_test=40, global_batch_size=32, seed=3, on_device=on_device)
    data.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    data.setup()
    return data


def batches(data: SyntheticImageDataModule, loader) -> list[torch.Tensor]:
    return [data.on_after_batch_transfer(batch, 0).images for batch in loader]


def test_the_device_path_gives_the_host_paths_float_batches_bit_for_bit():
    host, device = datamodule(on_device=False), datamodule(on_device=True)
    assert device.place() and isinstance(device.datasets["train"].images, torch.Tensor)
    assert not host.place() and isinstance(host.datasets["train"].images, np.ndarray)
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        host_batches, device_batches = batches(host, getattr(host, name)()), batches(device, getattr(device, name)())
        assert len(host_batches) == len(device_batches) > 0
        assert all(torch.equal(a, b) for a, b in zip(host_batches, device_batches, strict=True)), name
    # the previous host path made floats first, then cropped and flipped them: the same values
    train, indices = host.datasets["train"], np.arange(16)
    uint8 = train.__getitems__([SampleKey(int(i), 5) for i in indices]).images
    floats = torch.as_tensor(np.asarray(train.images[train.rows[indices]])).float().div_(255)
    before = (train._crop_and_flip(floats, 5, indices) - train.mean) / train.std
    assert uint8.dtype == torch.uint8 and torch.equal(normalise(uint8, train.mean, train.std), before)


def test_refused_with_loader_workers():
    data = SyntheticImageDataModule(num_train=100, num_test=20, global_batch_size=8, on_device=True, num_workers=2)
    data.setup()
    with pytest.raises(Exception, match=r"data\.num_workers=0"):
        data.place()


@pytest.mark.slow
def test_a_run_with_the_images_on_the_device_trains_the_same_model_and_resumes_exactly(tmp_path):
    """The shipped callbacks and schedule: the host path, the device path, and the device path resumed from the
    checkpoint of its first epoch's end end with the same weights, bit for bit."""
    common = [*TINY, "data.global_batch_size=32", "trainer.max_epochs=2", "test_after_fit=false"]
    host = run_to_end(tmp_path / "host", *common, "data.on_device=false")
    device = run_to_end(tmp_path / "device", *common, "data.on_device=true")
    (first_epoch_end,) = (device.run_dir / "checkpoints").glob("best-epoch000-*.ckpt")
    resumed = run_to_end(tmp_path / "resumed", *common, "data.on_device=true", f"ckpt_path={first_epoch_end}")
    assert identical(weights(host.run_dir), weights(device.run_dir))
    assert identical(weights(device.run_dir), weights(resumed.run_dir))
    assert not identical(weights(device.run_dir, first_epoch_end.name), weights(device.run_dir))
