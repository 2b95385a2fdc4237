"""Learning-rate scaling with the global batch size: the rule, its errors, and the LR a real run logs."""

from __future__ import annotations

import math

import pytest

from lightning_template_core._errors import UserError
from lightning_template_core._training.lr_scaling import scaled_lr

from conftest import TINY


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [("none", 0.2), (None, 0.2), ("linear", 0.4), ("LINEAR", 0.4), ("sqrt", 0.2 * math.sqrt(2))],
)
def test_rules(scaling, expected):
    assert scaled_lr(0.2, 256, 128, scaling) == pytest.approx(expected)


def test_smaller_batch_scales_down():
    assert scaled_lr(0.2, 32, 128, "linear") == pytest.approx(0.05)
    assert scaled_lr(0.2, 32, 128, "sqrt") == pytest.approx(0.1)


def test_none_ignores_a_missing_reference():
    assert scaled_lr(0.2, 256, None, "none") == 0.2


@pytest.mark.parametrize("bad", ["cubic", "", 2])
def test_unknown_rule_names_the_setting_and_choices(bad):
    with pytest.raises(UserError, match=r"lr_scaling=.*none, linear, sqrt"):
        scaled_lr(0.2, 256, 128, bad)


@pytest.mark.parametrize("reference", [None, 0, -4, 1.5, True])
def test_scaling_needs_a_reference(reference):
    with pytest.raises(UserError, match="lr_reference_batch_size"):
        scaled_lr(0.2, 256, reference, "linear")


def test_fit_logs_the_scaled_lr(fit):
    run = fit(
        *TINY,
        "lr_scaling=linear",
        "lr_reference_batch_size=16",
        "model.optimizer.lr=0.2",
        "data.global_batch_size=32",
        "data.micro_batch_size=16",
        "model.scheduler=null",
        "trainer.max_steps=1",
        "trainer.log_every_n_steps=1",
        "test_after_fit=false",
    )
    lrs = [float(row["train/lr"]) for row in run.metrics() if row.get("train/lr")]
    assert lrs == [pytest.approx(0.4)]
    assert "Learning rate: 0.4 (model.optimizer.lr 0.2, lr_scaling=linear from global batch 16 to 32)" in run.output


def test_a_scaled_lr_runs_the_shipped_schedule_as_that_lr_given_by_hand(fit):
    """The test above without the schedule, beside it on the shipped one: lr_scaling=linear from 16 to 32 at 0.2
    trains, step for step, with the learning rates of model.optimizer.lr=0.4 and no scaling."""
    common = [*TINY, "data.global_batch_size=32", "data.micro_batch_size=16", "trainer.max_steps=4"]
    common += ["trainer.log_every_n_steps=1", "test_after_fit=false"]
    scaled = fit(*common, "lr_scaling=linear", "lr_reference_batch_size=16", "model.optimizer.lr=0.2")
    by_hand = fit(*common, "lr_scaling=none", "model.optimizer.lr=0.4", name="by_hand")
    lrs = [[row["train/lr"] for row in run.metrics() if row.get("train/lr")] for run in (scaled, by_hand)]
    assert len(lrs[0]) == 4 and lrs[0] == lrs[1]


def test_bad_rule_is_one_paragraph(fit):
    run = fit(*TINY, "lr_scaling=cubic", "trainer.max_steps=1", check=False)
    assert run.returncode == 2 and "Traceback" not in run.output, run.output[-3000:]
    assert "lr_scaling=cubic" in run.stderr and "none, linear, sqrt" in " ".join(run.stderr.split())
