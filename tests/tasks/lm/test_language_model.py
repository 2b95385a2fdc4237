"""The LSTM language model: carried hidden state, exact decompositions, exact DDP perplexity
(exact resume, for every task: test_resume.py).

Real Trainers and real DDP processes (gloo on CPU), float64, on a tiny topic corpus.
"""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch
from torch.optim import SGD

from lightning_template.tasks.lm.data import SyntheticTextDataModule
from lightning_template.tasks.lm.module import LanguageModel
from lightning_template.tasks.lm.net import LSTMNet
from lightning_template_core.testing import max_abs_difference
from lightning_template_core.testing.runs import quiet_trainer, tiny_overrides

TINY = tiny_overrides(__file__)

EXACT = [
    *TINY,
    "model.net.dropout=0",
    "trainer.precision=64-true",
    "trainer.accelerator=cpu",
    "data.global_batch_size=16",
    "test_after_fit=false",
    "trainer.deterministic=true",
]
DECOMPOSITIONS = {
    "16x1x1": ["data.micro_batch_size=16", "trainer.devices=1"],
    "8x2x1": ["data.micro_batch_size=8", "trainer.devices=1"],
    "8x1x2": ["trainer=ddp_cpu", "data.micro_batch_size=8", "trainer.devices=2"],
    "4x2x2": ["trainer=ddp_cpu", "data.micro_batch_size=4", "trainer.devices=2"],
}


class RecordingModel(LanguageModel):
    """Records the hidden state each training window starts from and ends with."""

    def __init__(self, **kwargs) -> None:
        super().__init__(optimizer=lambda params: SGD(params, lr=1.0), scheduler=None, **kwargs)
        self.windows: list[tuple] = []

    def forward(self, tokens, hidden=None):
        logits, final = super().forward(tokens, hidden)
        if self.training:
            self.windows.append((hidden, final))
        return logits, final


@pytest.mark.parametrize("carry", [True, False])
def test_the_hidden_state_is_carried_detached_to_the_next_window(carry):
    data = SyntheticTextDataModule(global_batch_size=4, bptt=5, num_train=404, num_val=200, num_test=200)
    net = partial(LSTMNet, embedding_size=8, hidden_size=8, num_layers=2, dropout=0.0)
    model = RecordingModel(data=data.describe(), net=net, carry_hidden=carry)
    trainer = quiet_trainer(max_steps=25, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    windows = model.windows  # 20 windows per epoch: 25 steps cross into epoch 2
    assert len(windows) == 25 and windows[0][0] is None and windows[20][0] is None
    for (_, final), (initial, _) in itertools.pairwise(windows[:20]):
        if carry:
            assert final[0].requires_grad  # the window's own state is in its graph; the carried copy is not
            assert all(torch.equal(a, b) and not a.requires_grad for a, b in zip(initial, final, strict=True))
        else:
            assert initial is None


@pytest.mark.slow
@pytest.mark.ddp
def test_every_decomposition_gives_the_same_weights(fit):
    runs = {name: fit(*EXACT, *extra, "trainer.max_steps=5", name=name) for name, extra in DECOMPOSITIONS.items()}
    reference = runs["16x1x1"].weights()
    for name, run in runs.items():
        assert run.summary()["global_steps"] == 5
        assert run.summary()["layout"].startswith("global batch 16 = micro " + name.split("x")[0])
        difference = max_abs_difference(reference, run.weights())
        print(f"{name}: max weight difference {difference:.3g}")
        assert difference < 1e-9, f"{name} differs from 16x1x1 by {difference:.3g}"
    # the comparison has teeth: a different global batch gives clearly different weights
    other = fit(*EXACT, "data.global_batch_size=8", "trainer.max_steps=5", name="global8")
    assert max_abs_difference(reference, other.weights()) > 1e-4


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_perplexity_counts_every_token_once(fit):
    # 5 evaluation streams: ranks read 3 and 2 of them
    common = [*EXACT, "data.eval_batch_size=5", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0"]
    common.append("test_after_fit=true")
    single = fit(*common, "data.micro_batch_size=16", name="single")
    ddp = fit(*common, "trainer=ddp_cpu", "trainer.devices=2", name="ddp")
    single_val = [row for row in single.metrics() if row.get("val/ppl")][-1]
    ddp_val = [row for row in ddp.metrics() if row.get("val/ppl")][-1]
    assert float(single_val["val/ppl"]) == pytest.approx(float(ddp_val["val/ppl"]), rel=1e-12)
    assert float(single_val["val/loss"]) == pytest.approx(float(ddp_val["val/loss"]), rel=1e-12)
    single_test, ddp_test = single.summary()["test"], ddp.summary()["test"]
    assert single_test["test/ppl"] == pytest.approx(ddp_test["test/ppl"], rel=1e-12)
    assert single_test["test/ppl_floor"] == ddp_test["test/ppl_floor"] < single_test["test/ppl_unigram"]
