"""The central promise: any split of a global batch trains the same model (resume: test_resume.py).

Real Trainers, real DDP processes (gloo on CPU), float64, group norm, dropout off.
"""

from __future__ import annotations

import pytest

from lightning_template_core.testing import max_abs_difference
from lightning_template_core.testing.runs import tiny_overrides

TINY = tiny_overrides(__file__)

pytestmark = pytest.mark.slow

EXACT = [
    *TINY,
    "model.net.norm=group",
    "model.net.dropout=0",
    "trainer.precision=64-true",
    "trainer.accelerator=cpu",
    "data.global_batch_size=32",
    "test_after_fit=false",
    "trainer.deterministic=true",
]

DECOMPOSITIONS = {
    "32x1x1": ["data.micro_batch_size=32", "trainer.devices=1"],
    "8x4x1": ["data.micro_batch_size=8", "trainer.devices=1"],
    "16x1x2": ["trainer=ddp_cpu", "data.micro_batch_size=16", "trainer.devices=2"],
    "8x2x2": ["trainer=ddp_cpu", "data.micro_batch_size=8", "trainer.devices=2"],
}


@pytest.mark.ddp
@pytest.mark.parametrize("on_device", ["false", "true"])  # batches from the host, or the images on the device
def test_every_decomposition_gives_the_same_weights(fit, on_device):
    runs = {
        name: fit(*EXACT, *overrides, "trainer.max_steps=5", f"data.on_device={on_device}", name=name)
        for name, overrides in DECOMPOSITIONS.items()
    }
    reference = runs["32x1x1"].weights()
    initial_change = None
    for name, run in runs.items():
        assert run.summary()["global_steps"] == 5
        assert run.summary()["layout"].startswith("global batch 32 = micro " + name.split("x")[0])
        difference = max_abs_difference(reference, run.weights())
        assert difference < 1e-9, f"{name} differs from 32x1x1 by {difference:.3g}"
        initial_change = initial_change or difference
    # the comparison has teeth: a different global batch gives clearly different weights
    other = fit(*EXACT, "data.global_batch_size=16", "trainer.max_steps=5", name="global16")
    assert max_abs_difference(reference, other.weights()) > 1e-4


@pytest.mark.ddp
def test_ddp_validation_counts_every_sample_once(fit):
    # 650 images -> 65 for validation: ranks get 33 and 32, in batches of 5 (the last ones partial)
    common = [
        *EXACT,
        "data.num_train=650",
        "data.val_fraction=0.1",
        "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0",
        "data.eval_batch_size=5",
    ]
    single = fit(*common, "data.micro_batch_size=16", name="single")
    ddp = fit(*common, "trainer=ddp_cpu", "trainer.devices=2", name="ddp")
    single_metrics = [row for row in single.metrics() if row.get("val/acc")]
    ddp_metrics = [row for row in ddp.metrics() if row.get("val/acc")]
    assert single_metrics[-1]["val/acc"] == ddp_metrics[-1]["val/acc"]
    assert float(single_metrics[-1]["val/loss"]) == pytest.approx(float(ddp_metrics[-1]["val/loss"]), abs=1e-9)
