"""What a checkpoint carries of an epoch's training metrics: states merged onto another number of processes, and
the CSV log's copy of an epoch's row forgotten before the resumed run logs it again.

The resumes themselves, on every task's shipped experiment, are in test_resume.py and in each task's guarantee
tests (a SIGKILL, then the same command: the same logged rows)."""

from __future__ import annotations

import csv

import torch
from torchmetrics import Metric
from torchmetrics.aggregation import CatMetric  # keeps its state in a list
from torchmetrics.classification import MulticlassAccuracy

from lightning_template_core._callbacks.continuing_csv_logger import ContinuingCSVLogger
from lightning_template_core._checkpointing.epoch_metrics import _merge_metric_states, _metric_state


def updated(metric: Metric, *batches: tuple[torch.Tensor, torch.Tensor]) -> Metric:
    for batch in batches:
        metric.update(*batch)
    return metric


def test_the_states_two_processes_saved_merge_into_the_value_of_one_process_that_saw_everything():
    draw = torch.Generator().manual_seed(0)
    batches = [(torch.randn(32, 5, generator=draw), torch.randint(0, 5, (32,), generator=draw)) for _ in range(4)]
    everything = updated(MulticlassAccuracy(5, average="macro"), *batches).compute()
    saved = [
        _metric_state(updated(MulticlassAccuracy(5, average="macro"), *half)) for half in (batches[:3], batches[3:])
    ]
    merged = MulticlassAccuracy(5, average="macro")
    assert _merge_metric_states(merged, saved)
    assert merged.update_called
    assert torch.equal(merged.compute(), everything)


def test_list_states_merge_too():
    values = torch.arange(12.0).split([5, 7])
    saved = [_metric_state(updated(CatMetric(), (part,))) for part in values]
    merged = CatMetric()
    assert _merge_metric_states(merged, saved)
    assert torch.equal(merged.compute(), torch.arange(12.0))


class RunningMax(Metric):
    """A metric whose update needs the whole state (torchmetrics cannot merge it)."""

    full_state_update = True

    def __init__(self) -> None:
        super().__init__()
        self.add_state("value", torch.tensor(float("-inf")), dist_reduce_fx="max")

    def update(self, value: torch.Tensor) -> None:
        self.value = torch.maximum(self.value, value.max())

    def compute(self) -> torch.Tensor:
        return self.value


def test_a_metric_that_cannot_be_merged_starts_fresh_and_says_so():
    saved = [_metric_state(updated(RunningMax(), (torch.tensor([3.0]),)))]
    metric = RunningMax()
    assert not _merge_metric_states(metric, saved)
    assert not metric.update_called


def test_the_csv_log_forgets_only_the_epoch_row_it_is_about_to_receive_again(tmp_path):
    logger = ContinuingCSVLogger(save_dir=tmp_path, name="csv")
    logger.log_metrics({"train/loss": 1.0, "epoch": 0}, step=34)
    logger.log_metrics({"val/acc": 0.5, "epoch": 0}, step=35)
    logger.log_metrics({"train/acc": 0.25, "epoch": 0}, step=35)  # the epoch's row, logged before a kill
    logger.save()
    logger.forget_row(35, {"train/acc"})
    logger.log_metrics({"train/acc": 0.25, "epoch": 0}, step=35)
    logger.save()
    with open(logger.experiment.metrics_file_path) as handle:
        rows = [{k: v for k, v in row.items() if v} for row in csv.DictReader(handle)]
    assert rows == [
        {"train/loss": "1.0", "epoch": "0", "step": "34"},
        {"val/acc": "0.5", "epoch": "0", "step": "35"},
        {"train/acc": "0.25", "epoch": "0", "step": "35"},
    ]
