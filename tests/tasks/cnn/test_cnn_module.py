"""The classifier is built from its data's description alone, trains on any loader, and its checkpoint says
what its outputs mean."""

from __future__ import annotations

from functools import partial

import torch
from torch.optim import SGD
from torch.utils.data import DataLoader

from lightning_template.tasks.cnn.data import SyntheticImageDataModule
from lightning_template.tasks.cnn.dataset import ImageBatch
from lightning_template.tasks.cnn.module import ImageClassifier
from lightning_template.tasks.cnn.net import SmallResNet
from lightning_template.tasks.cnn.synthetic import CLASS_NAMES
from lightning_template_core import DataDescription
from lightning_template_core.testing.runs import quiet_trainer


def test_trains_on_a_plain_dataloader_and_the_checkpoint_holds_the_description(tmp_path):
    description = SyntheticImageDataModule(global_batch_size=8, num_train=40, num_test=8).describe()
    assert description.classes == CLASS_NAMES and description.item_shape == (3, 32, 32)
    model = ImageClassifier(
        data=description.as_dict(), net=partial(SmallResNet, widths=(8,)), optimizer=partial(SGD, lr=0.1)
    )
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 3, 32, 32, generator=generator), torch.arange(16) % 10
    # no DataModule: each batch says how many items its global batch holds
    batches = [ImageBatch(images[i : i + 8], labels[i : i + 8], global_items=8) for i in (0, 8)]
    before = model.net.head[-1].weight.detach().clone()
    trainer = quiet_trainer(max_steps=2, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    assert not torch.equal(before, model.net.head[-1].weight)

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)  # plain data: no pickled classes
    assert DataDescription.of(saved["hyper_parameters"]["data"]) == description
    assert model.net.head[-1].out_features == len(CLASS_NAMES)
