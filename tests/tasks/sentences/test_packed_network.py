"""The packed network computes no padding: a batch gives exactly what its sentences give one by one."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.optim import SGD

from lightning_template.tasks.sentences.data import SentenceDataset, SyntheticSentenceDataModule
from lightning_template.tasks.sentences.module import NextWordModel, TopicClassifier
from lightning_template.tasks.sentences.net import PackedLSTM
from lightning_template_core import SampleKey

MODELS = {"next_word": NextWordModel, "topic": TopicClassifier}


@pytest.fixture(scope="module")
def data() -> SyntheticSentenceDataModule:
    module = SyntheticSentenceDataModule(global_batch_size=4, num_train=200, num_val=10, num_test=10, vocab_size=50)
    module.setup()
    return module


def build(objective: str, data) -> torch.nn.Module:
    torch.manual_seed(0)
    net = partial(PackedLSTM, embedding_size=8, hidden_size=12, num_layers=2, dropout=0.0)
    model = MODELS[objective](data=data.describe(), net=net, optimizer=partial(SGD, lr=0.1))
    return model.double()


def loss_and_gradients(model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    loss = model.losses(batch).sum()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("objective", list(MODELS))
def test_a_padded_batch_equals_its_sentences_one_by_one(data, objective):
    model = build(objective, data)
    dataset = SentenceDataset(data.corpus.splits["train"])
    lengths = data.corpus.splits["train"].lengths
    indices = [int(i) for i in torch.argsort(torch.from_numpy(lengths))[::16]][:12]  # lengths from short to long
    batch = dataset.__getitems__([SampleKey(i, 0) for i in indices])
    assert batch.lengths.max() > 3 * batch.lengths.min()  # much padding in the batch
    # garbage in the padded slots changes nothing, since nothing reads them
    noisy = batch.tokens.clone()
    pad = torch.arange(noisy.shape[1]) >= torch.from_numpy(batch.lengths)[:, None]
    noisy[pad] = torch.randint(0, data.describe().vocab_size, (int(pad.sum()),))
    batch_loss, batch_grads = loss_and_gradients(model, batch._replace(tokens=noisy))
    alone_loss, alone_grads = torch.zeros((), dtype=torch.float64), [torch.zeros_like(g) for g in batch_grads]
    for i in indices:
        single = dataset.__getitems__([SampleKey(i, 0)])
        loss, grads = loss_and_gradients(model, single)
        alone_loss += loss
        alone_grads = [a + g for a, g in zip(alone_grads, grads, strict=True)]
    assert abs(batch_loss - alone_loss) < 1e-12 * max(1.0, abs(alone_loss.item()))
    difference = max((a - b).abs().max().item() for a, b in zip(batch_grads, alone_grads, strict=True))
    print(f"{objective}: loss {batch_loss.item():.6f}, max gradient difference {difference:.2e}")
    assert difference < 1e-12
