"""Any split of a global batch of sentences trains the same model: accumulation, DDP, both, on both objectives,
sized in sentences or in tokens, although the micro-batches of a step hold different numbers of tokens.

Real `fit` processes (gloo DDP on CPU), float64, the shipped experiments with the tiny data.
"""

from __future__ import annotations

import textwrap

import pytest
from hydra.utils import instantiate

from lightning_template.tasks.sentences.grouping import LengthGroupedBatchSampler
from lightning_template_core.testing import max_abs_difference, run_module
from lightning_template_core.testing.runs import compose_fit, tiny_overrides

TINY = tiny_overrides(__file__)

pytestmark = [pytest.mark.slow, pytest.mark.ddp]

OBJECTIVES = {"next_word": "experiment=sentences_lm", "topic": "experiment=sentences_topic"}
EXACT = [
    *TINY,
    "trainer.precision=64-true",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.max_steps=5",
    "model.net.dropout=0",
    "test_after_fit=false",
]
# the global batch sized in sentences or in tokens (a size whose micro-batches differ in tokens at every step)
SIZINGS = {
    "sentences": ["data.global_batch_size=48"],
    "tokens": ["data.global_batch_size=null", "data.global_batch_tokens=640"],
}
MICRO = {"sentences": "data.micro_batch_size", "tokens": "data.micro_batch_tokens"}
GLOBAL = {"sentences": 48, "tokens": 640}
DECOMPOSITIONS = {  # name: (micro-batches per device per step, devices)
    "1x1": (1, 1),
    "2x1": (2, 1),
    "1x2": (1, 2),
    "2x2": (2, 2),
}

# What the buggy libraries did: each micro-batch's own mean, averaged again over accumulation and devices.
MICRO_BATCH_MEAN = textwrap.dedent(
    """
    from lightning_template.tasks.sentences.module import NextWordModel, TopicClassifier

    class MeanOfMeans:
        def training_step(self, batch, batch_idx):
            return self.losses(batch).mean()

    class NextWordMicroMean(MeanOfMeans, NextWordModel):
        pass

    class TopicMicroMean(MeanOfMeans, TopicClassifier):
        pass
    """
)


def decomposition(sizing: str, name: str) -> list[str]:
    accumulate, devices = DECOMPOSITIONS[name]
    micro = f"{MICRO[sizing]}={GLOBAL[sizing] // (accumulate * devices)}"
    return [micro, *(["trainer=ddp_cpu", "trainer.devices=2"] if devices == 2 else ["trainer.devices=1"])]


def fit_weights(run_dir, *overrides, env=None):
    run = run_module("fit", f"hydra.run.dir={run_dir}", *overrides, run_dir=run_dir, env=env)
    return run.weights()


def tokens_of_each_micro_batch(overrides: list[str], objective: str) -> list[list[int]]:
    """The tokens the network reads in each of the 4 micro-batches of the first 5 steps."""
    cfg = compose_fit(overrides)
    data = instantiate(cfg.data, _convert_="all")
    data.setup()
    layout = data.resolve_layout(1)
    lengths = data.corpus.splits["train"].lengths
    sampler = LengthGroupedBatchSampler(data.global_batches(), lengths, layout, 0, seed=data.seed)
    requests = list(sampler)[: 5 * layout.accumulate_grad_batches]
    read = lengths - 1 if objective == "next_word" else lengths  # the first token of a sentence is not a target
    return [[int(read[list(r.indices)].sum()) for r in requests[s : s + 4]] for s in range(0, len(requests), 4)]


@pytest.mark.parametrize("sizing", list(SIZINGS))
@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_every_decomposition_gives_the_same_weights_and_a_mean_of_means_does_not(tmp_path, objective, sizing):
    common = [*EXACT, OBJECTIVES[objective], *SIZINGS[sizing]]
    per_step = tokens_of_each_micro_batch([*common, f"{MICRO[sizing]}={GLOBAL[sizing] // 4}"], objective)
    print(f"{objective}, {sizing}: tokens of the 4 micro-batches of each step: {per_step}")
    assert all(len(set(step)) > 1 for step in per_step), "the micro-batches of each step should differ in size"

    weights = {name: fit_weights(tmp_path / name, *common, *decomposition(sizing, name)) for name in DECOMPOSITIONS}
    for name, run_weights in weights.items():
        difference = max_abs_difference(weights["1x1"], run_weights)
        print(f"{objective}, {sizing}, {name}: max weight difference {difference:.3g}")
        assert difference < 1e-9, f"{name} differs from one device by {difference:.3g}"

    if objective == "topic" and sizing == "sentences":
        return  # equal sentence counts per micro-batch: a mean of means happens to be exact here
    (tmp_path / "micro_batch_mean.py").write_text(MICRO_BATCH_MEAN)
    model = "NextWordMicroMean" if objective == "next_word" else "TopicMicroMean"
    buggy = fit_weights(
        tmp_path / "buggy",
        *common,
        *decomposition(sizing, "2x2"),
        f"model._target_=micro_batch_mean.{model}",
        env={"PYTHONPATH": str(tmp_path)},
    )
    difference = max_abs_difference(weights["1x1"], buggy)
    print(f"{objective}, {sizing}: the per-micro-batch mean differs by {difference:.3g}")
    assert difference > 1e-6
