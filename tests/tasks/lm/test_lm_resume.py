"""The shipped LM schedule (ReduceLROnPlateau on val/loss at each epoch's end) across a resume.

Real `fit` processes on the shipped experiment (exact resume for every task: test_resume.py).
"""

from __future__ import annotations

import pytest

from lightning_template_core.testing.runs import checkpoint, identical, keep_every, run_to_end, tiny_overrides, weights

TINY = tiny_overrides(__file__)
SHIPPED = [*TINY, "data.global_batch_size=16", "test_after_fit=false"]

pytestmark = pytest.mark.slow


def test_the_epoch_end_plateau_step_after_a_resume_reads_the_validation_before_the_checkpoint(tmp_path):
    """Validations every 5 steps, epochs of 6: the step at the end of epoch 1 (step 12) reads the validation of
    step 10. A run resumed from step 10's checkpoint has not run that validation (Lightning keeps no metrics in
    a checkpoint); it must still take the same step: the LR cut the same, the weights identical."""
    every_5 = ["trainer.val_check_interval=5", "trainer.check_val_every_n_epoch=null", "trainer.max_steps=20"]
    common = [*SHIPPED, *every_5, *keep_every(5)]
    straight = run_to_end(tmp_path / "straight", *common)
    step_10 = straight.run_dir / "checkpoints" / "s0010.ckpt"
    resumed = run_to_end(tmp_path / "resumed", *common, f"ckpt_path={step_10}")

    def lr(name: str) -> float:
        return checkpoint(straight.run_dir, name)["lr_schedulers"][0]["_last_lr"][0]

    assert lr("last.ckpt") < lr("s0010.ckpt")  # the plateau cut the LR after step 10: the case is exercised
    assert checkpoint(resumed.run_dir)["lr_schedulers"] == checkpoint(straight.run_dir)["lr_schedulers"]
    assert identical(weights(straight.run_dir), weights(resumed.run_dir))
