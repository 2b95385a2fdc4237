"""Resume is exact on the path users run: every task's shipped experiment, with its schedule and callbacks.

Real `fit` processes: stopped by SIGKILL at random moments, by stop signals, by a lost DDP
rank; resumed with `ckpt_path=last`, on the same layout or another one.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra.utils import get_object

from lightning_template_core._callbacks.monitor_history import history_path, read_history
from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._files.directory_lock import LOCK_NAME
from lightning_template_core._training.declared_metrics import training_metrics
from lightning_template_core._verification.layouts import keep_every

from conftest import (
    LONG_VALIDATION_BY_TASK,
    ROOT,
    SHAPE_TASKS,
    TASK,
    TINY_BY_TASK,
    WARM,
    Completed,
    console_script,
    max_abs_difference,
)
from warm_interpreter import WarmProcess

pytestmark = pytest.mark.slow

Process = subprocess.Popen | WarmProcess
EXIT_STOPPED, EXIT_LOST_RANK = 75, 69

# A global batch of 16 in every task (in the units its DataModule counts), so that each
# task's tiny set gives several optimizer steps per epoch.
SHIPPED = {task: [*tiny, "data.global_batch_size=16", "test_after_fit=false"] for task, tiny in TINY_BY_TASK.items()}
TASKS = list(SHIPPED)
SINGLE_ACCUMULATE_4 = ["trainer.accelerator=cpu", "trainer.devices=1", "data.micro_batch_size=4"]
DDP_2 = ["trainer=ddp_cpu", "trainer.devices=2", "data.micro_batch_size=8"]


def fit_command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "lightning_template_core.fit", f"hydra.run.dir={run_dir}", *overrides]


def start(
    run_dir: Path, *overrides: str, env: dict[str, str] | None = None, log: Path | None = None, fresh: bool = False
) -> Process:
    """A `fit` process in its own process group, its output in ``log`` (default ``<run_dir>.log``);
    ``fresh``: the console script in an interpreter of its own, for a test of what happens while it imports torch
    (the console scripts handle stop signals from their first moment)."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled", **(env or {})}
    command = fit_command(run_dir, *overrides)
    if fresh:
        command = [str(Path(sys.executable).with_name("fit")), *command[3:]]
    with open(log or run_dir.with_suffix(".log"), "a") as output:
        if not fresh and WARM.can_run(command[1:], env):
            return WARM.popen(command[1:], cwd=ROOT, env=env, stdout=output, stderr=output, new_session=True)
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def finish(proc: Process, run_dir: Path, timeout: float = 600, log: Path | None = None) -> Completed:
    proc.wait(timeout=timeout)
    output = (log or run_dir.with_suffix(".log")).read_text()
    return Completed(proc.returncode, output, "", run_dir)


def run_to_end(run_dir: Path, *overrides: str) -> Completed:
    done = finish(start(run_dir, *overrides), run_dir)
    assert done.returncode == 0, done.output[-5000:]
    return done


def wait_for(path: Path, proc: Process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"fit ended ({proc.returncode}) before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.05)


def wait_for_line(log: Path, line: str, proc: Process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while line not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


def said(run: Completed) -> str:
    """The run's output with line wrapping undone."""
    return " ".join(run.output.split())


def weights(run_dir: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)["state_dict"]


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def schedule_has_a_horizon(task: str) -> bool:
    """Whether the task's shipped LR schedule is sized by the run's length (it takes ``total_steps``)."""
    scheduler = compose_fit(SHIPPED[task]).model.get("scheduler")
    return scheduler is not None and "total_steps" in inspect.signature(get_object(scheduler._target_)).parameters


def best_name(run: Completed) -> str | None:
    best = run.summary()["best_checkpoint"]
    return Path(best).name if best else None


# keep_every: the shipped checkpoint callback set to keep s<step>.ckpt files (monitor=null). The same
# guarantees on the shipped monitor: the kill and signal tests, which continue from last.ckpt.


def exact_arithmetic(task: str) -> list[str]:
    """float64, no dropout, and a norm that does not mix samples (group instead of batch norm)."""
    norm = ["model.net.norm=group"] if compose_fit(SHIPPED[task]).model.net.get("norm") == "batch" else []
    return ["trainer.precision=64-true", "model.net.dropout=0", *norm]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("layout", ["single", pytest.param("ddp2", marks=pytest.mark.ddp)])
def test_resuming_a_periodic_checkpoint_is_bit_identical(tmp_path, task, layout):
    """The reproduction of the resume bug, on each task's shipped schedule and callbacks."""
    common = [*SHIPPED[task], "trainer.max_steps=20", *keep_every(10), *(DDP_2 if layout == "ddp2" else [])]
    straight = run_to_end(tmp_path / "straight", *common)
    step_10 = straight.run_dir / "checkpoints" / "s0010.ckpt"
    resumed = run_to_end(tmp_path / "resumed", *common, f"ckpt_path={step_10}")
    assert max_abs_difference(weights(straight.run_dir, "s0010.ckpt"), weights(straight.run_dir)) > 1e-4
    assert identical(weights(straight.run_dir), weights(resumed.run_dir))
    assert logged_rows(resumed.run_dir) == [row for row in logged_rows(straight.run_dir) if int(row["step"]) >= 10]
    # the check of the data position runs too: another global batch is refused
    other_dir = tmp_path / "other"
    other = finish(start(other_dir, *common, "data.global_batch_size=32", f"ckpt_path={step_10}"), other_dir)
    assert other.returncode == 2 and "global_batch_size was 16 and is now 32" in said(other)


def checkpoint(run_dir: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)


def test_resuming_with_the_ema_preset_is_bit_identical_in_both_weights(tmp_path):
    """callbacks=ema: the average (the checkpoint's state_dict, what validation and the commands use) and the raw
    weights it averages (current_model_state) both continue exactly from a periodic checkpoint."""
    common = [*SHIPPED[TASK], "callbacks=ema", "callbacks.ema.decay=0.9", "trainer.max_steps=20", *keep_every(10)]
    common.append("trainer.max_epochs=-1")  # 20 steps on any task (a small epoch count may end the run first)
    straight = run_to_end(tmp_path / "straight", *common)
    resumed = run_to_end(tmp_path / "resumed", *common, f"ckpt_path={straight.run_dir / 'checkpoints' / 's0010.ckpt'}")
    ended, again = checkpoint(straight.run_dir), checkpoint(resumed.run_dir)
    assert max_abs_difference(ended["state_dict"], ended["current_model_state"]) > 1e-4  # an average, not a copy
    assert identical(ended["state_dict"], again["state_dict"])
    assert identical(ended["current_model_state"], again["current_model_state"])
    assert ended["averaging_state"]["n_averaged"].item() == again["averaging_state"]["n_averaged"].item() == 20


def test_both_presets_on_the_shipped_monitor_survive_a_sigkill_bit_for_bit(tmp_path):
    """callbacks=[ema,early_stopping] as shipped (the run's monitor, last.ckpt), killed after its first periodic
    checkpoint and continued with ckpt_path=last: the same average, raw weights and best checkpoint as a run
    never killed."""
    common = [*SHIPPED[TASK], "callbacks=[ema,early_stopping]", "trainer.max_steps=20", "ckpt_path=last"]
    common.append("callbacks.model_checkpoint.every_n_train_steps=5")
    straight = run_to_end(tmp_path / "straight", *common)
    run_dir = tmp_path / "killed"
    proc = start(run_dir, *common)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    continued = run_to_end(run_dir, *common)
    ended, again = checkpoint(straight.run_dir), checkpoint(run_dir)
    assert identical(ended["state_dict"], again["state_dict"])
    assert identical(ended["current_model_state"], again["current_model_state"])
    assert continued.summary()["best_score"] == straight.summary()["best_score"]
    assert best_name(continued) == best_name(straight)


def test_resuming_with_the_early_stopping_preset_stops_at_the_same_step(tmp_path):
    """callbacks=early_stopping: its count of validations without improvement is in the checkpoint, so a run
    resumed between two such validations stops where the uninterrupted run stopped, with the same weights."""
    never_better = ["callbacks.early_stopping.min_delta=10", "callbacks.early_stopping.patience=2"]
    validate_every_5 = ["trainer.val_check_interval=5", "trainer.check_val_every_n_epoch=null"]
    common = [*SHIPPED[TASK], "callbacks=early_stopping", *never_better, *validate_every_5, "trainer.max_steps=40"]
    straight = run_to_end(tmp_path / "straight", *common, *keep_every(5))
    stopped_at = straight.summary()["global_steps"]
    assert stopped_at == 15  # the first validation is the best; the next two do not improve on it
    resumed = run_to_end(tmp_path / "resumed", *common, f"ckpt_path={straight.run_dir / 'checkpoints' / 's0010.ckpt'}")
    assert resumed.summary()["global_steps"] == stopped_at
    assert identical(weights(straight.run_dir), weights(resumed.run_dir))


def test_an_early_stopped_run_continued_stays_stopped_and_last_ckpt_follows_every_validation(tmp_path):
    """callbacks=[ema,early_stopping], stopped by its patience: continued with ckpt_path=last (as after a SIGKILL in
    its last seconds, or by hand), the run ends where it is, with the same weights. Every validation moved
    last.ckpt, also those that did not improve (Lightning 2.6 writes it only beside a new best file)."""
    never_better = ["callbacks.early_stopping.min_delta=10", "callbacks.early_stopping.patience=2"]
    validate_every_5 = ["trainer.val_check_interval=5", "trainer.check_val_every_n_epoch=null"]
    common = [*SHIPPED[TASK], "callbacks=[ema,early_stopping]", *never_better, *validate_every_5]
    common += ["trainer.max_steps=40", "trainer.max_epochs=-1", "ckpt_path=last"]
    run = run_to_end(tmp_path / "run", *common)
    assert run.summary()["global_steps"] == 15  # the first validation is the best; the next two do not improve
    assert checkpoint(run.run_dir)["global_step"] == 15
    finished = weights(run.run_dir)
    continued = run_to_end(tmp_path / "run", *common)
    assert continued.summary()["global_steps"] == 15
    assert identical(weights(run.run_dir), finished)


def test_a_validation_that_writes_no_best_file_still_moves_last_ckpt(tmp_path):
    """With no top-k file at a validation (here none at all: save_top_k=0), Lightning 2.6 left last.ckpt where it
    was; killed at step 12 after validations at 5 and 10, the run's resume point is step 10's."""
    validate_every_5 = ["trainer.val_check_interval=5", "trainer.check_val_every_n_epoch=null"]
    kill = ["+callbacks.kill._target_=lightning_template_core.testing.stop_points.SignalAtStep"]
    kill += ["+callbacks.kill.step=12", "+callbacks.kill.signal_name=SIGKILL"]
    common = [*SHIPPED[TASK], *validate_every_5, "trainer.max_steps=40", "trainer.max_epochs=-1"]
    common.append("callbacks.model_checkpoint.save_top_k=0")
    killed = finish(start(tmp_path / "run", *common, *kill), tmp_path / "run")
    assert killed.returncode == -9, killed.output[-3000:]
    assert [line["step"] for line in read_history(history_path(tmp_path / "run"))] == [5, 10]
    assert checkpoint(tmp_path / "run")["global_step"] == 10


@pytest.mark.parametrize("task", SHAPE_TASKS)
def test_a_checkpoint_of_an_epochs_end_resumes_exactly_under_max_steps(tmp_path, task):
    """The checkpoint written at the validation that ends an epoch (last.ckpt, the best one), with max_steps set:
    Lightning 2.6 counted that epoch twice, ending a whole epoch early (checkpointing/epoch_end_resume.py)."""
    common = [*SHIPPED[task], "trainer.max_epochs=2", "trainer.max_steps=100000"]
    common.append("callbacks.model_checkpoint.save_top_k=-1")  # keep each validation's checkpoint
    straight = run_to_end(tmp_path / "straight", *common)
    (first_epoch_end,) = (straight.run_dir / "checkpoints").glob("best-epoch000-*.ckpt")
    resumed = run_to_end(tmp_path / "resumed", *common, f"ckpt_path={first_epoch_end}")
    assert resumed.summary()["global_steps"] == straight.summary()["global_steps"]
    assert identical(weights(straight.run_dir), weights(resumed.run_dir))


@pytest.mark.parametrize("task", TASKS)
def test_sigkill_at_random_moments_then_ckpt_path_last_is_bit_identical(tmp_path, task):
    """Three trials, each killed twice at random moments (start-up, training, checkpoint writes)."""
    common = [*SHIPPED[task], "model.net.dropout=0.3", "trainer.max_steps=14", "ckpt_path=last"]
    common.append("callbacks.model_checkpoint.every_n_train_steps=2")
    began = time.monotonic()
    straight = run_to_end(tmp_path / "straight", *common)
    reference, duration = weights(straight.run_dir), time.monotonic() - began
    draw = random.Random(f"{task}-kills")
    for trial in range(3):
        run_dir, kills = tmp_path / f"killed{trial}", 0
        for delay in (draw.uniform(0.3, 1.0) * duration, draw.uniform(0.2, 0.8) * duration):
            proc = start(run_dir, *common)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
        final = run_to_end(run_dir, *common)
        assert identical(reference, weights(run_dir)), f"trial {trial} ({kills} kills) differs"
        assert final.summary()["global_steps"] == 14
        # the best checkpoint survives the kills too (where a validation ran): the same score, at the same step
        assert final.summary()["best_score"] == straight.summary()["best_score"]
        assert best_name(final) == best_name(straight)


# Both directions on the core task, one on each other task, the directions alternating: every task resumes
# across layouts, and each direction is taken on more than one task (40 s a case: not all eight).
DIRECTIONS = [("ddp2", "single_acc4"), ("single_acc4", "ddp2")]
LAYOUT_CHANGES = [
    (task, *direction)
    for number, task in enumerate(TASKS)
    for direction in (DIRECTIONS if task == TASK else DIRECTIONS[number % 2 : number % 2 + 1])
]


@pytest.mark.ddp
@pytest.mark.parametrize(("task", "first", "then"), LAYOUT_CHANGES)
def test_a_checkpoint_resumes_on_another_layout_of_the_same_global_batch(tmp_path, task, first, then):
    """Stopped after 10 steps on 2 DDP processes, resumed on 1 process accumulating 4 (or the reverse)."""
    layouts = {"ddp2": DDP_2, "single_acc4": SINGLE_ACCUMULATE_4}
    common = [*SHIPPED[task], *exact_arithmetic(task), "trainer.max_steps=16", *keep_every(10)]
    straight = run_to_end(tmp_path / "straight", *common, *layouts[first])
    step_10 = straight.run_dir / "checkpoints" / "s0010.ckpt"
    resumed = run_to_end(tmp_path / "resumed", *common, *layouts[then], f"ckpt_path={step_10}")
    difference = max_abs_difference(weights(straight.run_dir), weights(resumed.run_dir))
    assert difference < 1e-9, f"{task}: {first} -> {then} differs by {difference:.3g}"
    assert max_abs_difference(weights(straight.run_dir), weights(straight.run_dir, "s0010.ckpt")) > 1e-4
    assert resumed.output.count("Resuming on another layout") == 1
    assert resumed.output.count("RNG streams of") == 1  # said once: per-process streams do not carry over


@pytest.mark.parametrize("task", SHAPE_TASKS)
def test_a_crash_before_the_first_validation_leaves_a_checkpoint(tmp_path, task):
    """every_n_train_steps writes last.ckpt from step N on, while the monitored metric is not logged yet. (Killed
    at step 3 exactly: timed from outside, the fastest task had validated before the kill landed.)"""
    run_dir = tmp_path / "run"
    kill_at_3 = [
        "+callbacks.kill._target_=lightning_template_core.testing.stop_points.SignalAtStep",
        "+callbacks.kill.step=3",
    ]
    common = [*SHIPPED[task], "trainer.max_steps=200", "callbacks.model_checkpoint.every_n_train_steps=2"]
    killed = finish(start(run_dir, *common, *kill_at_3, "+callbacks.kill.signal_name=SIGKILL"), run_dir)
    assert killed.returncode == -signal.SIGKILL, killed.output[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2
    assert compose_fit(SHIPPED[task]).monitor not in checkpoint["epoch_schedules"]["metrics"]  # no validation ran


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGUSR1, signal.SIGINT])
def test_a_stop_signal_saves_at_a_step_and_the_run_continues_exactly(tmp_path, stop, shared_runs):
    common = [*SHIPPED[TASK], "model.net.dropout=0.3", "trainer.max_steps=30", "ckpt_path=last"]
    common.append("callbacks.model_checkpoint.every_n_train_steps=5")
    reference = weights(shared_runs.get("fit", *common).run_dir)  # one uninterrupted run for the three signals
    run_dir = tmp_path / "stopped"
    proc = start(run_dir, *common)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(stop)
    stopped = finish(proc, run_dir)
    assert stopped.returncode == EXIT_STOPPED, stopped.output[-3000:]
    assert f"Stopped: {stop.name} received" in said(stopped) and "ckpt_path=last" in said(stopped)
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
    assert 5 <= step < 30 and not (run_dir / "summary.json").exists()
    continued = run_to_end(run_dir, *common)
    assert f"continuing from {run_dir / 'checkpoints' / 'last.ckpt'} (step {step})" in said(continued)
    assert identical(reference, weights(run_dir))
    attempts = json.loads((run_dir / "provenance.json").read_text())["attempts"]
    assert [attempt["from_step"] for attempt in attempts] == [0, step]  # each attempt that trained, recorded


def test_a_stop_signal_at_a_step_a_validation_follows_stops_after_every_callback_has_seen_it(tmp_path, shared_runs):
    """The signal at step 10, validated at: the run stops after that validation with its line in the run's
    history and its checkpoint ranked; continued, the history reads as one run, each validation once."""
    every_5 = ["trainer.val_check_interval=5", "trainer.check_val_every_n_epoch=null"]
    common = [*SHIPPED[TASK], *every_5, "trainer.max_steps=20", "trainer.max_epochs=-1", "ckpt_path=last"]
    common.append("callbacks.model_checkpoint.save_top_k=-1")
    run_dir = tmp_path / "stopped"
    signal_at_10 = [
        "+callbacks.stop._target_=lightning_template_core.testing.stop_points.SignalAtStep",
        "+callbacks.stop.step=10",
    ]
    stopped = finish(start(run_dir, *common, *signal_at_10), run_dir)
    assert stopped.returncode == EXIT_STOPPED and "after optimizer step 10" in said(stopped), stopped.output[-3000:]
    assert [line["step"] for line in read_history(history_path(run_dir))] == [5, 10]
    assert len(list((run_dir / "checkpoints").glob("best-*step000010.ckpt"))) == 1  # ranked before the stop
    run_to_end(run_dir, *common)
    assert [line["step"] for line in read_history(history_path(run_dir))] == [5, 10, 15, 20]
    assert identical(weights(shared_runs.get("fit", *common).run_dir), weights(run_dir))


def ranked(run_dir: Path) -> list[str]:
    return sorted(path.name for path in (run_dir / "checkpoints").glob("best-*.ckpt"))


def logged_rows(run_dir: Path) -> list[dict[str, str]]:
    """Every row of the run's CSV log (its steps, validations and epochs, as the loggers received them), without
    the columns a row leaves empty."""
    return [
        {name: value for name, value in row.items() if value != ""} for row in Completed(0, "", "", run_dir).metrics()
    ]


def validated_steps(run_dir: Path) -> list[int]:
    return [line["step"] for line in read_history(history_path(run_dir))]


# The shipped validation, once per epoch at its end, where Lightning ranks it (at the epoch's end, after the
# validation's own end); every validation's file kept, so that a ranking lost shows as a file missing
RANK_EVERY_EPOCH = ["trainer.max_epochs=2", "callbacks.model_checkpoint.save_top_k=-1", "ckpt_path=last"]


def test_a_sigkill_at_any_checkpoint_write_loses_no_ranking(tmp_path, shared_runs):
    """A SIGKILL as the run writes its n-th checkpoint, for each n up to the second epoch's: continued, the same
    ranked checkpoints, history, weights and logged rows as the uninterrupted run (the epoch-end row of an epoch
    whose end-of-epoch checkpoint was the resume point too). (A resume point written between an
    epoch-end validation and its ranking at the epoch's end lost the ranking: the continued run starts the next
    epoch.)"""
    straight = shared_runs.get("fit", *SHIPPED[TASK], *RANK_EVERY_EPOCH)
    steps_per_epoch = validated_steps(straight.run_dir)[0]
    common = [*SHIPPED[TASK], *RANK_EVERY_EPOCH, f"callbacks.model_checkpoint.every_n_train_steps={steps_per_epoch}"]
    killed_at_each_write_continues_as(straight, common, tmp_path)


def test_an_early_stopped_run_killed_at_any_checkpoint_write_ends_as_the_run_that_never_stopped(tmp_path):
    """callbacks=[ema,early_stopping], stopped by its patience at step 15: a SIGKILL at each checkpoint write, then
    the same command again: the same stop, ranked checkpoints, history and weights."""
    never_better = ["callbacks.early_stopping.min_delta=10", "callbacks.early_stopping.patience=2"]
    validate_every_5 = ["trainer.val_check_interval=5", "trainer.check_val_every_n_epoch=null"]
    common = [*SHIPPED[TASK], "callbacks=[ema,early_stopping]", *never_better, *validate_every_5]
    common += ["trainer.max_steps=40", "trainer.max_epochs=-1", "ckpt_path=last"]
    straight = run_to_end(tmp_path / "straight", *common)
    assert straight.summary()["global_steps"] == 15
    killed_at_each_write_continues_as(straight, common, tmp_path)


def killed_at_each_write_continues_as(straight: Completed, common: list[str], tmp_path: Path) -> None:
    """For each n, a run killed as it writes its n-th checkpoint and run again ends as ``straight``."""
    for n in range(1, 13):
        run_dir = tmp_path / f"killed_at_write_{n}"
        kill = [
            "+callbacks.kill._target_=lightning_template_core.testing.stop_points.SignalAtSave",
            f"+callbacks.kill.n={n}",
        ]
        killed = finish(start(run_dir, *common, *kill), run_dir)
        if killed.returncode == 0:  # the run writes fewer: every write was a kill's moment
            break
        assert killed.returncode == -signal.SIGKILL, f"write {n}: {killed.output[-3000:]}"
        run_to_end(run_dir, *common)
        assert ranked(run_dir) == ranked(straight.run_dir), f"killed at write {n}"
        assert validated_steps(run_dir) == validated_steps(straight.run_dir), f"killed at write {n}"
        assert identical(weights(straight.run_dir), weights(run_dir)), f"killed at write {n}"
        assert logged_rows(run_dir) == logged_rows(straight.run_dir), f"killed at write {n}"
    assert n > 4, "two epochs write at least two checkpoints each (the ranked one and last.ckpt)"


def test_a_stop_signal_as_the_last_epoch_ends_lets_the_run_finish(tmp_path, shared_runs):
    """SIGTERM at the last step of the last epoch (its validation follows): the run's work is done, so it ends as
    the run that got no signal (tested, summarised, exit 0), not as "Stopped"."""
    straight = shared_runs.get("fit", *SHIPPED[TASK], *RANK_EVERY_EPOCH)
    last_step = straight.summary()["global_steps"]
    signal_at_the_end = [
        "+callbacks.stop._target_=lightning_template_core.testing.stop_points.SignalAtStep",
        f"+callbacks.stop.step={last_step}",
    ]
    run_dir = tmp_path / "signalled"
    done = finish(start(run_dir, *SHIPPED[TASK], *RANK_EVERY_EPOCH, *signal_at_the_end), run_dir)
    assert done.returncode == 0, done.output[-3000:]
    assert "received as training ended" in said(done) and "Stopped:" not in done.output
    assert done.summary()["global_steps"] == last_step and validated_steps(run_dir) == validated_steps(straight.run_dir)
    assert identical(weights(straight.run_dir), weights(run_dir))


def test_a_stop_signal_at_an_epochs_last_step_stops_after_the_epochs_end(tmp_path, shared_runs):
    """The validation that ends the epoch runs and is ranked at the epoch's end before the run stops."""
    straight = shared_runs.get("fit", *SHIPPED[TASK], *RANK_EVERY_EPOCH)
    steps_per_epoch = validated_steps(straight.run_dir)[0]
    run_dir = tmp_path / "stopped"
    signal_at_the_end = [
        "+callbacks.stop._target_=lightning_template_core.testing.stop_points.SignalAtStep",
        f"+callbacks.stop.step={steps_per_epoch}",
    ]
    stopped = finish(start(run_dir, *SHIPPED[TASK], *RANK_EVERY_EPOCH, *signal_at_the_end), run_dir)
    assert stopped.returncode == EXIT_STOPPED, stopped.output[-3000:]
    assert f"after optimizer step {steps_per_epoch}" in said(stopped)
    assert validated_steps(run_dir) == [steps_per_epoch] and ranked(run_dir) == ranked(straight.run_dir)[:1]
    run_to_end(run_dir, *SHIPPED[TASK], *RANK_EVERY_EPOCH)
    assert ranked(run_dir) == ranked(straight.run_dir) and validated_steps(run_dir) == validated_steps(straight.run_dir)
    assert identical(weights(straight.run_dir), weights(run_dir))


def test_a_killed_run_continued_logs_into_the_same_wandb_run(tmp_path):
    """logger=[csv,wandb], offline: the attempt after a SIGKILL continues the first attempt's W&B run (its id,
    recorded in the run directory), which `wandb sync` then uploads as one run."""
    common = [*SHIPPED[TASK], "logger=[csv,wandb]", "trainer.max_steps=20", "ckpt_path=last"]
    common.append("callbacks.model_checkpoint.every_n_train_steps=5")
    offline = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    run_dir = tmp_path / "run"
    proc = start(run_dir, *common, env=offline)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    finished = finish(start(run_dir, *common, env=offline), run_dir)
    assert finished.returncode == 0, finished.output[-3000:]
    attempts = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and all(folder.name.endswith(f"-{run_id}") for folder in attempts), attempts
    assert (run_dir / "wandb_run_id").read_text().strip() == run_id


def test_a_killed_run_continued_logs_into_the_same_mlflow_run(tmp_path):
    """logger=[csv,mlflow] as shipped (a SQLite store in the run directory): the attempt after a SIGKILL continues
    the first attempt's MLflow run (its id, recorded in the run directory): one run, its steps from the first
    attempt's to the last, finished."""
    from mlflow.tracking import MlflowClient

    common = [*SHIPPED[TASK], "logger=[csv,mlflow]", "trainer.max_steps=20", "trainer.max_epochs=-1", "ckpt_path=last"]
    common += ["callbacks.model_checkpoint.every_n_train_steps=5", "trainer.log_every_n_steps=1"]
    run_dir = tmp_path / "run"
    proc = start(run_dir, *common)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    finished = finish(start(run_dir, *common), run_dir)
    assert finished.returncode == 0, finished.output[-3000:]
    client = MlflowClient(f"sqlite:///{run_dir}/mlflow.db")
    runs = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])
    assert [run.info.run_id for run in runs] == [run_id] and runs[0].info.status == "FINISHED"
    (name,) = training_metrics(compose_fit(common))[:1]
    steps = sorted({metric.step for metric in client.get_metric_history(run_id, name)})
    # the first attempt's steps, then every step from the checkpoint at step 5 on (a kill may lose the metrics
    # MLflow had not yet written)
    assert steps[0] < 5 and set(range(5, 20)) <= set(steps) and steps[-1] == 19, steps


def test_a_stop_signal_before_training_ends_with_75_and_one_line_and_blocks_nothing(tmp_path):
    """Half a second in (importing torch), and once set up (held at the start of training, Lightning's signal
    handlers in place, before the run's own take over: timed from outside, the signal could land after step 1)."""
    run_dir = tmp_path / "run"
    hold = "+callbacks.hold._target_=lightning_template_core.testing.stop_points.HoldBeforeTraining"
    for moment, stop in (("importing", signal.SIGTERM), ("set up", signal.SIGINT)):
        log = tmp_path / f"{moment}.log"
        held = [hold] if moment == "set up" else []
        proc = start(run_dir, *SHIPPED[TASK], "trainer.max_steps=2", *held, log=log, fresh=moment == "importing")
        if moment == "importing":
            time.sleep(0.5)
        else:
            wait_for_line(log, "Holding before training", proc)
        proc.send_signal(stop)
        stopped = finish(proc, run_dir, log=log)
        assert stopped.returncode == EXIT_STOPPED, f"{moment}: {stopped.output[-3000:]}"
        assert said(stopped).count(f"Stopped: {stop.name} received") == 1 and "Traceback" not in stopped.output
    assert not (run_dir / "checkpoints").exists()
    assert run_to_end(run_dir, *SHIPPED[TASK], "trainer.max_steps=2").summary()["global_steps"] == 2


def test_sigusr1_under_slurm_requeues_the_job_after_saving(tmp_path):
    """SLURM's time-limit warning: save at a step, then `scontrol requeue <job id>` (a stand-in scontrol here)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol.calls"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {"SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run_dir = tmp_path / "run"
    proc = start(
        run_dir,
        *SHIPPED[TASK],
        "trainer.max_steps=500",
        "ckpt_path=last",
        "callbacks.model_checkpoint.every_n_train_steps=5",
        env=env,
    )
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGUSR1)
    stopped = finish(proc, run_dir)
    assert stopped.returncode == EXIT_STOPPED, stopped.output[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    assert "SLURM job 4242 requeued" in said(stopped)


@pytest.mark.ddp
def test_sigterm_to_rank_0_stops_every_ddp_rank_at_the_same_step(tmp_path):
    common = [*SHIPPED[TASK], *DDP_2, "model.net.dropout=0.3", "trainer.max_steps=30", "ckpt_path=last"]
    common.append("callbacks.model_checkpoint.every_n_train_steps=5")
    reference = weights(run_to_end(tmp_path / "straight", *common).run_dir)
    run_dir = tmp_path / "stopped"
    proc = start(run_dir, *common)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signal.SIGTERM)  # rank 0 only: rank 1 learns it at the next step boundary
    stopped = finish(proc, run_dir, timeout=120)
    assert stopped.returncode == EXIT_STOPPED, stopped.output[-3000:]
    assert said(stopped).count("Stopped: SIGTERM received") == 1
    run_to_end(run_dir, *common)
    assert identical(reference, weights(run_dir))


def child_pids(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.ddp
@pytest.mark.parametrize("lost", [1, 0])
def test_a_lost_ddp_rank_ends_the_others_with_its_name_and_the_checkpoint(tmp_path, lost):
    run_dir = tmp_path / "run"
    common = [*SHIPPED[TASK], *DDP_2, "trainer.max_steps=100000", "trainer.max_epochs=1000"]
    proc = start(run_dir, *common, "callbacks.model_checkpoint.every_n_train_steps=5")
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    (rank_1,) = child_pids(proc.pid)
    os.kill(rank_1 if lost == 1 else proc.pid, signal.SIGKILL)
    began = time.monotonic()
    if lost == 1:
        done = finish(proc, run_dir, timeout=60)
        assert done.returncode == EXIT_LOST_RANK, done.output[-3000:]
    else:  # rank 1 is on its own now: it must end too
        while Path(f"/proc/{rank_1}").exists() and time.monotonic() - began < 60:
            time.sleep(0.1)
        done = Completed(-9, run_dir.with_suffix(".log").read_text(), "", run_dir)
        assert not Path(f"/proc/{rank_1}").exists()
    assert time.monotonic() - began < 60
    text = said(done)
    # during training or the validation at an epoch's end, as the task's epoch length has it
    assert re.search(f"DDP rank {lost} of 2 ended during (training|validation)", text) and "ckpt_path=last" in text
    assert str(run_dir / "checkpoints" / "last.ckpt") in text
    assert text.count(" ended during ") == 1 and "Traceback" not in text, done.output[-3000:]


@pytest.mark.ddp
@pytest.mark.parametrize("task", SHAPE_TASKS)
def test_a_rank_lost_while_rank_0_validates_alone_is_reported_too(tmp_path, task):
    """Rank 0 hears of a lost rank at its next collective, here only when its long sanity check ends: Lightning's
    launcher would SIGKILL it within 5 s, before it says anything (exit 137); the report comes all the same."""
    run_dir = tmp_path / "run"
    long_validation = LONG_VALIDATION_BY_TASK[task]
    proc = start(run_dir, *SHIPPED[task], *DDP_2, *long_validation, "trainer.num_sanity_val_steps=-1")
    log, deadline = run_dir.with_suffix(".log"), time.monotonic() + 300
    while "Training data:" not in log.read_text():  # said by rank 0 once set up, before the sanity check
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    (rank_1,) = child_pids(proc.pid)
    os.kill(rank_1, signal.SIGKILL)
    began = time.monotonic()
    done = finish(proc, run_dir, timeout=60)
    assert time.monotonic() - began < 30
    assert done.returncode == EXIT_LOST_RANK, done.output[-3000:]
    text = said(done)
    assert "DDP rank 1 of 2 ended during" in text and "Traceback" not in text, done.output[-3000:]
    assert "No checkpoint was written yet: run the same command again" in text


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    common = [*SHIPPED[TASK], "trainer.max_steps=12", "ckpt_path=last", *keep_every(4)]
    straight = run_to_end(tmp_path / "straight", *common)
    checkpoints = straight.run_dir / "checkpoints"
    run_dir = tmp_path / "damaged"
    (run_dir / "checkpoints").mkdir(parents=True)
    for name in ("s0004.ckpt", "s0008.ckpt"):
        (run_dir / "checkpoints" / name).write_bytes((checkpoints / name).read_bytes())
    newest = (checkpoints / "s0012.ckpt").read_bytes()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(newest[: len(newest) // 2])  # cut short
    continued = run_to_end(run_dir, *common)
    text = said(continued)
    assert f"Skipping the damaged checkpoint {run_dir / 'checkpoints' / 'last.ckpt'}" in text
    assert f"continuing from {run_dir / 'checkpoints' / 's0008.ckpt'} (step 8)" in text
    assert identical(weights(straight.run_dir), weights(run_dir))


def files_of(run_dir: Path) -> dict[Path, bytes]:
    """Every file of a run but its lock (which names the last process that held the directory)."""
    return {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file() and path.name != LOCK_NAME}


def test_a_refused_start_changes_nothing_in_the_run(tmp_path, shared_runs):
    """Each kind of refusal, byte for byte on every file of the run. The last two are refused inside
    trainer.fit, after Hydra and the loggers have started: neither may write there."""
    common = [*SHIPPED[TASK], "trainer.max_steps=6"]
    first = shared_runs.copy(shared_runs.get("fit", *common), tmp_path / "run")
    before = files_of(first.run_dir)
    refusals = {
        "another run": (common, ["already holds a run", "ckpt_path=last"]),
        "another global batch": ([*common, "data.global_batch_size=32", "ckpt_path=last"], ["was 16 and is now 32"]),
    }
    if schedule_has_a_horizon(TASK):
        refusals["another horizon"] = (
            [*SHIPPED[TASK], "trainer.max_steps=12", "ckpt_path=last"],
            ["schedule spans 6 optimizer steps", "give 12"],
        )
    for name, (overrides, fragments) in refusals.items():
        log = tmp_path / f"{name}.log"
        refused = finish(start(first.run_dir, *overrides, log=log), first.run_dir, log=log)
        assert refused.returncode == 2, f"{name}: {refused.output[-3000:]}"
        assert all(fragment in said(refused) for fragment in fragments), f"{name}: {said(refused)[-2000:]}"
        assert files_of(first.run_dir) == before, f"{name} changed the run"


def test_a_start_that_fails_in_fit_leaves_no_run_and_the_corrected_command_starts_there(tmp_path, shared_runs):
    """Refused inside trainer.fit (a checkpoint of another global batch): no file but the lock is left (the
    loggers' empty folders, made by Lightning's setup, may stay)."""
    other = shared_runs.get("fit", *SHIPPED[TASK], "trainer.max_steps=6").run_dir / "checkpoints" / "last.ckpt"
    run_dir = tmp_path / "run"
    failed = finish(start(run_dir, *SHIPPED[TASK], "data.global_batch_size=32", f"ckpt_path={other}"), run_dir)
    assert failed.returncode == 2 and "is now 32" in said(failed)
    assert [path for path in run_dir.rglob("*") if path.is_file()] == [run_dir / LOCK_NAME]
    corrected = run_to_end(run_dir, *SHIPPED[TASK], "data.global_batch_size=32", "trainer.max_steps=2")
    assert corrected.summary()["global_steps"] == 2


def test_a_second_fit_in_a_directory_a_fit_holds_is_refused_naming_it(tmp_path):
    """Two resumes of one run: the second is refused while the first holds the directory (stopped with
    SIGSTOP, so the first cannot end before the second looks), and the first then finishes alone."""
    run_dir, common = tmp_path / "run", [*SHIPPED[TASK], "trainer.max_steps=6", "ckpt_path=last"]
    first = start(run_dir, *common, log=tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while f'"pid": {first.pid}' not in ((run_dir / LOCK_NAME).read_text() if (run_dir / LOCK_NAME).exists() else ""):
        assert first.poll() is None and time.monotonic() < deadline, "the first fit never took the lock"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = finish(start(run_dir, *common, log=tmp_path / "second.log"), run_dir, log=tmp_path / "second.log")
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.output[-3000:]
    assert "is in use by `fit " in said(second) and f"(pid {first.pid} on " in said(second)
    done = finish(first, run_dir, log=tmp_path / "first.log")
    assert done.returncode == 0, done.output[-3000:]
    assert done.summary()["global_steps"] == 6


def test_evaluate_and_export_read_a_run_that_is_still_training_and_write_beside_it(tmp_path):
    """A run held at the start of its continuation (its fit holds the directory): evaluate and export read its
    last checkpoint and write their outputs to folders beside the run, which stays as the fit left it."""
    run_dir = tmp_path / "run"
    common = [*SHIPPED[TASK], "trainer.max_steps=8", "callbacks.model_checkpoint.every_n_train_steps=2"]
    kill = ["+callbacks.kill._target_=lightning_template_core.testing.stop_points.SignalAtStep"]
    kill += ["+callbacks.kill.step=5", "+callbacks.kill.signal_name=SIGKILL"]
    assert finish(start(run_dir, *common, *kill), run_dir).returncode == -signal.SIGKILL
    hold = "+callbacks.hold._target_=lightning_template_core.testing.stop_points.HoldBeforeTraining"
    log = tmp_path / "held.log"
    held = start(run_dir, *common, "ckpt_path=last", hold, log=log)
    try:
        wait_for_line(log, "Holding before training", held)
        before = files_of(run_dir)
        checkpoint_path = run_dir / "checkpoints" / "last.ckpt"
        evaluated = console_script("evaluate", f"ckpt_path={checkpoint_path}")
        exported = console_script("export", f"ckpt_path={checkpoint_path}")
    finally:
        os.killpg(held.pid, signal.SIGKILL)
        held.wait()
    assert "is still training (its fit holds it)" in evaluated.output
    (beside,) = tmp_path.glob("run.evaluate-*")
    assert json.loads((beside / "eval.json").read_text())["checkpoint"] == str(checkpoint_path)
    (exported_to,) = tmp_path.glob("run.export-*")
    assert (exported_to / "export" / "model.json").is_file() and "is still training" in exported.output
    assert files_of(run_dir) == before


def test_ckpt_path_last_without_a_checkpoint_starts_from_scratch_and_says_so(tmp_path):
    run = run_to_end(tmp_path / "run", *SHIPPED[TASK], "trainer.max_steps=2", "ckpt_path=last")
    assert "no checkpoint in" in said(run) and "starting from scratch" in said(run)
    assert run.summary()["global_steps"] == 2 and run.summary()["resumed_from"] is None


@pytest.mark.parametrize("task", SHAPE_TASKS)
@pytest.mark.parametrize(
    "saves", [[], ["callbacks.model_checkpoint.every_n_train_steps=1"]], ids=["default", "periodic"]
)
def test_a_validation_at_the_final_step_is_ranked_among_the_best(tmp_path, saves, task):
    """Two epochs, validated at the end of each: the second validation is at the run's final step. With
    periodic saves too (Lightning's own checkpoint then ranked nothing, and the test used the last weights)."""
    common = [*SHIPPED[task], "trainer.max_steps=-1", "trainer.max_epochs=2", "trainer.val_check_interval=1.0", *saves]
    run = run_to_end(
        tmp_path / "run", *common, "trainer.check_val_every_n_epoch=1", "callbacks.model_checkpoint.save_top_k=2"
    )
    config = compose_fit(SHIPPED[task])
    best = max if config.monitor_mode == "max" else min
    scores = {int(row["step"]) + 1: float(row[config.monitor]) for row in run.metrics() if row.get(config.monitor)}
    summary = run.summary()
    steps = summary["global_steps"]
    assert steps % 2 == 0 and sorted(scores) == [steps // 2, steps]
    ranked = sorted((run.run_dir / "checkpoints").glob("best-*.ckpt"))
    assert [int(path.name[-11:-5]) for path in ranked] == [steps // 2, steps]  # the final step's too
    assert summary["best_score"] == pytest.approx(best(scores.values()))
    best_step = torch.load(summary["best_checkpoint"], weights_only=True)["global_step"]
    assert scores[best_step] == best(scores.values())


@pytest.mark.ddp
def test_the_torchrun_launcher_restarts_after_a_killed_worker_and_continues_exactly(tmp_path):
    """scripts/torchrun_ddp.sh as a user runs it, on 2 CPU processes; worker 1 killed mid-training (by SIGKILL
    at step 10, from inside: timed from outside, the fastest task had finished training first)."""
    common = [*SHIPPED[TASK], "data.micro_batch_size=8", "model.net.dropout=0.3", "trainer.max_steps=30"]
    common.append("callbacks.model_checkpoint.every_n_train_steps=3")
    kill = [
        "+callbacks.kill._target_=lightning_template_core.testing.stop_points.SignalAtStep",
        "+callbacks.kill.step=10",
    ]
    kill += ["+callbacks.kill.signal_name=SIGKILL", "+callbacks.kill.rank=1", "+callbacks.kill.from_scratch_only=true"]

    def launch(run_dir: Path, port: int, *extra: str) -> subprocess.Popen:
        env = {**os.environ, "GPUS": "2", "TRAINER": "ddp_cpu", "RUN_DIR": str(run_dir), "MASTER": f"localhost:{port}"}
        log = open(run_dir.with_suffix(".log"), "a")  # noqa: SIM115 (closed with the process)
        script = str(ROOT / "scripts" / "torchrun_ddp.sh")
        command = ["bash", script, *common, *extra]
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    straight = launch(tmp_path / "straight", 29611)
    assert straight.wait(timeout=600) == 0, (tmp_path / "straight.log").read_text()[-3000:]
    run_dir = tmp_path / "restarted"
    launcher = launch(run_dir, 29612, *kill)
    assert launcher.wait(timeout=600) == 0, run_dir.with_suffix(".log").read_text()[-3000:]
    text = " ".join(run_dir.with_suffix(".log").read_text().split())
    assert "of 2 ended during training" in text and "ckpt_path=last: continuing from" in text
    assert identical(weights(tmp_path / "straight"), weights(run_dir))


def test_a_continuation_with_another_seed_is_refused_naming_it(tmp_path):
    """The data's seed selects and orders its samples: a checkpoint continued with another is other data."""
    common = [*SHIPPED[TASK], "trainer.max_steps=4", *keep_every(2)]
    run = run_to_end(tmp_path / "run", *common)
    step_2 = f"ckpt_path={run.run_dir / 'checkpoints' / 's0002.ckpt'}"
    refused = finish(start(tmp_path / "again", *common, "seed=1", step_2), tmp_path / "again")
    assert refused.returncode == 2, refused.output[-3000:]
    assert "data.seed was 0, now 1" in said(refused) and "continue_on_other_data=true" in said(refused)
