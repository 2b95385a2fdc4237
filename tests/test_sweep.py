"""The `sweep` command for real: Optuna studies of real `fit` processes, resumed, in parallel, under DDP.

Trials are read from their monitor history, so they are also checked under loggers other
than the CSV one, and the history itself across a resume with a real Trainer.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import lightning.pytorch as L
import optuna
import pytest
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from optuna.trial import TrialState

from lightning_template_core._callbacks.monitor_history import MonitorHistory, history_path, read_history
from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._training.declared_metrics import training_metrics, validation_metrics
from lightning_template_core.sweep.optuna_sweep import SweepOptions, open_study
from lightning_template_core.sweep.spec import load_spec
from lightning_template_core.sweep.storage import default_url, open_storage
from lightning_template_core.sweep.trial_process import logged_metrics

from conftest import TASK, TINY, expect_user_error, run_module

SHORT = [*TINY, "trainer.max_epochs=2", "trainer.val_check_interval=1.0"]
SHIPPED = load_spec(TASK)  # the project's first task's sweep file, configs/sweep/<task>.yaml
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def sweep(sweep_dir: Path, config: str, *args: str, check: bool = True):
    return run_module("sweep", config, "--dir", str(sweep_dir), *args, run_dir=sweep_dir, check=check, timeout=900)


def load(sweep_dir: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=default_url(sweep_dir))


def write_sweep(path: Path, parameters: dict) -> Path:
    """A grid sweep of ``parameters`` for the project's first task, on its shipped sweep's metric."""
    metric = {"name": SHIPPED.metric, "goal": SHIPPED.goal}
    config = {"method": "grid", "metric": metric, "parameters": {"experiment": {"value": TASK}, **parameters}}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_sweep_finishes_prints_the_best_and_resumes_in_parallel(tmp_path):
    first = sweep(tmp_path, TASK, "--n-trials", "4", *SHORT)
    study = load(tmp_path, SHIPPED.name)
    # the shipped pruner may stop a trailing trial (whether it does depends on the task's numbers)
    assert all(t.state in FINISHED for t in study.trials) and len(study.trials) == 4
    best = study.best_trial
    assert f"Best trial {best.number}: {SHIPPED.metric} = {best.value:.6g}" in first.stdout
    assert f"model.optimizer.lr={best.params['model.optimizer.lr']}" in first.stdout  # the command to train it

    # the same command again, two more trials on two workers: one study of six
    sweep(tmp_path, TASK, "--n-trials", "2", "--workers", "2", *SHORT)
    trials = load(tmp_path, SHIPPED.name).trials
    assert len(trials) == 6 and all(t.state in FINISHED for t in trials)
    new = trials[4:]
    assert new[0].datetime_start < new[1].datetime_complete and new[1].datetime_start < new[0].datetime_complete
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6  # a resumed sampler does not repeat itself

    with (tmp_path / "trials.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [int(row["trial"]) for row in table] == list(range(6))
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
    for trial in trials:  # each trial trained with the LR it was given, scaled as fit's log says
        run_dir = tmp_path / f"trial_{trial.number:04d}"
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["model"]["optimizer"]["lr"] == trial.params["model.optimizer.lr"]
        logged = re.search(r"Learning rate: (\S+) ", (run_dir / "fit.log").read_text()).group(1)
        assert float(table[trial.number]["lr used"]) == pytest.approx(float(logged), rel=1e-4)
        final = (
            trial.value
            if trial.state == TrialState.COMPLETE
            else trial.intermediate_values[max(trial.intermediate_values)]
        )
        assert float(table[trial.number][SHIPPED.metric]) == pytest.approx(final)


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_trial_trains_one_lr_on_both_ranks(tmp_path):
    config = write_sweep(tmp_path / "ddp.yaml", {"model.optimizer.lr": {"values": [0.0375]}})
    ddp = ["trainer=ddp_cpu", "trainer.devices=2", "trainer.max_epochs=1", "data.global_batch_size=32"]
    sweep(tmp_path, str(config), *TINY, *ddp)
    (trial,) = load(tmp_path, "ddp").trials
    assert trial.state == TrialState.COMPLETE
    log = (tmp_path / "trial_0000" / "fit.log").read_text()
    assert "Batch layout: global batch 32 = micro 16 x accumulate 1 x 2 device(s)" in log
    # each rank reports its configured LR to rank 0, which checks they agree (check_ranks_agree)
    assert "Learning rate 0.0375 on all 2 ranks" in log


@pytest.mark.slow
def test_a_crashing_trial_is_marked_failed_and_the_sweep_goes_on(tmp_path):
    config = write_sweep(tmp_path / "crash.yaml", {"data.micro_batch_size": {"values": [7, 16]}})
    run = sweep(tmp_path, str(config), *TINY, "trainer.max_epochs=1", "data.global_batch_size=32")
    states = {t.params["data.micro_batch_size"]: t for t in load(tmp_path, "crash").trials}
    assert states[16].state == TrialState.COMPLETE
    assert states[7].state == TrialState.FAIL
    assert "data.global_batch_size=32 is not divisible by data.micro_batch_size=7" in states[7].user_attrs["error"]
    assert "micro_batch_size=7 -> fail: fit exited with status 2" in run.stdout


@pytest.mark.slow
def test_a_trailing_trial_is_pruned_at_its_first_validation(tmp_path):
    config = write_sweep(tmp_path / "prune.yaml", {"model.optimizer.lr": {"values": [1e-7, 0.1]}})
    # long enough that the sweep, which reads the history every second, finds the trial still running on any
    # task (the fastest task's five tiny epochs ended first); pruned, it stops after its first validation
    overrides = [*TINY, "trainer.max_epochs=100"]
    study = open_study(load_spec(str(config)), open_storage(None, tmp_path), overrides, SweepOptions(pruner="median"))
    perfect = 1.0  # the best a metric of the shipped tasks can be: no real run reaches it, so the new trial trails
    for number in range(2):  # two earlier trials (added by hand: no grid point taken) at that value throughout
        study.add_trial(
            optuna.trial.create_trial(
                params={"model.optimizer.lr": 0.1},
                distributions={"model.optimizer.lr": optuna.distributions.CategoricalDistribution([1e-7, 0.1])},
                value=perfect,
                intermediate_values=dict.fromkeys(range(100), perfect),
                user_attrs={"run_dir": str(tmp_path / f"earlier_{number}")},
            )
        )
    run = sweep(tmp_path, str(config), "--pruner", "median", "--n-trials", "1", *overrides)
    trial = load(tmp_path, "prune").trials[-1]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [0]
    assert "pruned after validation 1" in run.stdout
    assert not (tmp_path / f"trial_{trial.number:04d}" / "summary.json").exists()  # stopped, not finished


@pytest.mark.slow
@pytest.mark.parametrize("loggers", ["logger=wandb", "~logger"])  # W&B is disabled in the tests' environment
def test_trials_are_read_whatever_the_logger(tmp_path, loggers):
    """Without the CSV logger a trial's metric comes from its monitor history, at each validation."""
    config = write_sweep(tmp_path / "loggers.yaml", {"model.optimizer.lr": {"values": [0.05]}})
    run = sweep(tmp_path, str(config), *SHORT, loggers)  # two epochs, validated at the end of each
    (trial,) = load(tmp_path, "loggers").trials
    assert trial.state == TrialState.COMPLETE, run.output[-3000:]
    run_dir = tmp_path / "trial_0000"
    assert not list(run_dir.rglob("metrics.csv"))
    values = [line[SHIPPED.metric] for line in read_history(history_path(run_dir))]
    assert len(values) == 2 and trial.intermediate_values == dict(enumerate(values)) and trial.value == values[-1]
    assert f"Best trial 0: {SHIPPED.metric} = {trial.value:.6g}" in run.stdout
    # what a trial whose metric.name is misspelt lists as logged: the metric, and only what the model declares
    # (its step metrics once a step has logged: trainer.log_every_n_steps)
    logged = set(logged_metrics(run_dir))
    cfg = compose_fit(TINY)
    assert SHIPPED.metric in logged and logged <= {*validation_metrics(cfg), *training_metrics(cfg)}, logged


class ValidationLoss(BoringModel):
    """Lightning's smallest model, logging a validation metric (its SGD starts at LR 0.1, divided by 10 each epoch)."""

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.step(batch))


def fit_boring(root: Path, max_epochs: int, ckpt_path: Path | None = None) -> list[dict]:
    """Fit with a checkpoint per epoch (``epoch=N.ckpt``); return the monitor history it leaves."""
    trainer = L.Trainer(
        default_root_dir=root,
        max_epochs=max_epochs,
        limit_train_batches=2,
        limit_val_batches=1,
        callbacks=[MonitorHistory(), ModelCheckpoint(dirpath=root, filename="{epoch}", save_top_k=-1)],
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(ValidationLoss(), ckpt_path=ckpt_path, weights_only=True)  # as fit resumes
    return read_history(history_path(root))


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")  # the resume
def test_monitor_history_continues_a_resumed_run_as_if_uninterrupted(tmp_path):
    first = fit_boring(tmp_path, max_epochs=2)
    assert [(line["epoch"], line["step"]) for line in first] == [(0, 2), (1, 4)]  # no line for the sanity check
    assert all(line["base_lr"] == 0.1 and "val/loss" in line for line in first)  # the LR before its schedule
    with history_path(tmp_path).open("a") as handle:
        handle.write('{"epoch": 2, "st')  # killed while writing
    assert read_history(history_path(tmp_path)) == first

    # resumed after epoch 0: the first attempt's epoch 1 and its partial line are replaced by this attempt's
    resumed = fit_boring(tmp_path, max_epochs=3, ckpt_path=tmp_path / "epoch=0.ckpt")
    assert [(line["epoch"], line["step"]) for line in resumed] == [(0, 2), (1, 4), (2, 6)]
    assert resumed[0] == first[0] and all(line["base_lr"] == 0.1 for line in resumed)


@pytest.mark.parametrize(
    ("where", "fragment"),
    [("/proc/no-sweep", "/proc"), ("{a_file}/sweep", "is a file, not"), ("journal", "Give a writable path")],
    ids=["pseudo_file_system", "a_file_in_the_way", "journal_under_a_file"],
)
def test_a_sweep_folder_or_journal_that_cannot_be_written_is_one_paragraph(tmp_path, where, fragment):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    if where == "journal":
        done = sweep(tmp_path / "ok", TASK, "--storage", f"journal:{a_file}/study.log", "--n-trials", "1", check=False)
    else:
        done = sweep(Path(where.format(a_file=a_file)), TASK, "--n-trials", "1", check=False)
    expect_user_error(done, fragment)
