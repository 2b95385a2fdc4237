"""A short real training run learns: the loss falls and validation accuracy leaves chance."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_loss_falls_and_accuracy_rises(fit):
    run = fit(
        "data.num_train=5000",
        "data.num_test=500",
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=5",
    )
    losses = [float(row["train/loss"]) for row in run.metrics() if row.get("train/loss")]
    assert len(losses) >= 8
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, (first, last)
    summary = run.summary()
    assert summary["best_score"] > 0.5 and summary["test"]["test/acc"] > 0.5
    assert summary["best_checkpoint"].startswith(str(run.run_dir / "checkpoints" / "best-"))
