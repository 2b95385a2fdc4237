"""Step metrics reach the loggers at the steps that log, and whatever monitors one at every step.

Logging every step would cost host time every step (``GlobalBatchModule.log_step_metric``);
a checkpoint ranked on a step metric must still compare the value of each step it saves at.
"""

from __future__ import annotations

import lightning.pytorch as L
import torch

from lightning_template_core._command_line.hydra_command import compose_fit, compose_job
from lightning_template_core._runs.assembly import build_run
from lightning_template_core._training.declared_metrics import training_metrics

from conftest import TINY

STEP_METRIC = training_metrics(compose_fit(TINY))[0]  # the task's first declared training metric


class SeenAtEachStep(L.Callback):
    def __init__(self) -> None:
        self.seen: list[float | None] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if not trainer.fit_loop._should_accumulate():
            value = trainer.callback_metrics.get(STEP_METRIC)
            self.seen.append(None if value is None else float(value))


def fit_seeing(tmp_path, *overrides: str) -> tuple[SeenAtEachStep, L.Trainer]:
    length = ["trainer.max_steps=12", "trainer.max_epochs=-1", "trainer.log_every_n_steps=10", "test_after_fit=false"]
    run = build_run(compose_job([*TINY, *length, *overrides], tmp_path / "run"))
    seeing = SeenAtEachStep()
    run.trainer.callbacks.append(seeing)
    run.trainer.fit(run.model, datamodule=run.datamodule)
    return seeing, run.trainer


def test_a_step_metric_nothing_monitors_is_logged_at_the_steps_that_log(tmp_path):
    seeing, _ = fit_seeing(tmp_path)
    assert seeing.seen[:9] == [None] * 9 and None not in seeing.seen[9:], seeing.seen


def test_a_checkpoint_ranked_on_a_step_metric_compares_the_value_of_the_step_it_saves_at(tmp_path):
    ranked = [
        f"callbacks.model_checkpoint.monitor={STEP_METRIC}",
        "callbacks.model_checkpoint.mode=min",
        "callbacks.model_checkpoint.save_top_k=-1",
        "trainer.check_val_every_n_epoch=null",
        "trainer.val_check_interval=3",  # validations (and checkpoints) at steps 3, 6, 9 and 12
    ]
    seeing, trainer = fit_seeing(tmp_path, *ranked)
    assert None not in seeing.seen and len(set(seeing.seen)) == len(seeing.seen), seeing.seen
    scores = trainer.checkpoint_callback.best_k_models
    steps = {
        torch.load(path, map_location="cpu", weights_only=True)["global_step"]: score for path, score in scores.items()
    }
    assert sorted(steps) == [3, 6, 9, 12]
    assert all(float(score) == seeing.seen[step - 1] for step, score in steps.items()), (steps, seeing.seen)
