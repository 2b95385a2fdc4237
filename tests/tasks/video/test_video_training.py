"""The video task trained for real: exact across decompositions, and it needs the order of the frames."""

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
    "data.global_batch_size=8",
    "trainer.max_steps=5",
    "trainer.num_sanity_val_steps=0",
    "test_after_fit=false",
    "trainer.deterministic=true",
]

DECOMPOSITIONS = {
    "8x1x1": ["data.micro_batch_size=8", "trainer.devices=1"],
    "2x4x1": ["data.micro_batch_size=2", "trainer.devices=1"],
    "4x1x2": ["trainer=ddp_cpu", "data.micro_batch_size=4", "trainer.devices=2"],
}


@pytest.mark.ddp
def test_every_decomposition_of_a_clip_batch_gives_the_same_weights(fit):
    runs = {name: fit(*EXACT, *overrides, name=name) for name, overrides in DECOMPOSITIONS.items()}
    reference = runs["8x1x1"].weights()
    for name, run in runs.items():
        assert run.summary()["global_steps"] == 5
        assert run.summary()["layout"].startswith("global batch 8 = micro " + name.split("x")[0])
        difference = max_abs_difference(reference, run.weights())
        assert difference < 1e-9, f"{name} differs from 8x1x1 by {difference:.3g}"
    # the comparison has teeth: another global batch gives clearly different weights
    other = fit(*EXACT, "data.global_batch_size=4", name="global4")
    assert max_abs_difference(reference, other.weights()) > 1e-4


def test_a_short_run_learns_the_order_of_frames(fit):
    common = [
        "experiment=video",
        "data.num_train=200",
        "data.global_batch_size=16",
        "data.num_val=20",
        "data.num_test=20",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    run = fit(*common, name="kept")
    test = run.summary()["test"]
    assert test["test/acc"] > 0.6 and test["test/video_acc"] > 0.6  # chance is 0.25


@pytest.mark.ddp
def test_ddp_validation_counts_every_video_once(fit):
    # 5 validation videos: ranks get 3 and 2, in batches of 2 videos x 3 clips (the last ones partial)
    common = [
        *EXACT,
        "data.num_val=5",
        "data.eval_batch_size=2",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
    ]
    single = fit(*common, "data.micro_batch_size=4", name="single")
    ddp = fit(*common, "trainer=ddp_cpu", "trainer.devices=2", name="ddp")
    last = [[row for row in run.metrics() if row.get("val/video_acc")][-1] for run in (single, ddp)]
    for key in ("val/acc", "val/video_acc"):
        assert last[0][key] == last[1][key]
    assert float(last[0]["val/loss"]) == pytest.approx(float(last[1]["val/loss"]), abs=1e-9)
