"""No training step reads a device value back to the host, but at the steps that log or save.

Counted on the CPU (the same aten ops make a GPU wait) during the training batches of a
real fit of each task's shipped experiment: its callbacks, logger and progress bar as
shipped.
"""

from __future__ import annotations

import pytest
import torch

from lightning_template_core._command_line.hydra_command import compose_job
from lightning_template_core._runs.assembly import build_run
from lightning_template_core._training.host_reads import CountHostReads, HostReadCounter

from conftest import TINY_BY_TASK

BUDGET = 0.1  # reads per optimizer step, outside the steps that log or save


def shipped_fit_counting(task: str, run_dir, *overrides: str) -> tuple[CountHostReads, int]:
    """15 optimizer steps of the task's shipped experiment, counted; and its accumulation."""
    run = build_run(
        compose_job([f"experiment={task}", "trainer.max_steps=15", "trainer.max_epochs=-1", *overrides], run_dir)
    )
    counting = CountHostReads().attach(run.trainer)
    run.trainer.fit(run.model, datamodule=run.datamodule)
    return counting, run.trainer.accumulate_grad_batches


@pytest.mark.parametrize("task", sorted(TINY_BY_TASK))
def test_a_training_step_reads_nothing_back_outside_logging_steps(task, tmp_path):
    counting, accumulate = shipped_fit_counting(task, tmp_path / "run")
    assert counting.counted_batches >= 10 * accumulate and counting.excluded_batches >= accumulate
    assert counting.per_step(accumulate) <= BUDGET, dict(counting.counts)


def test_the_counter_sees_a_read_of_the_loss_and_not_the_optimizers_step_counters():
    """A negative control: ``loss.item()`` is counted; Adam's host-side step counter is not."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([weight])
    with HostReadCounter() as counter:
        for _ in range(2):
            loss = (weight**2).sum()
            loss.backward()
            optimizer.step()
            if loss > 0:  # is_nonzero
                loss.item()
    assert counter.counts == {"_local_scalar_dense": 4}
