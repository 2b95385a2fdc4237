"""One study, many `sweep` processes: on a real PostgreSQL server and on a journal file, as on a cluster.

Two processes are started at the same moment on one study, each with two workers (so
four trials run at once on this machine): the study ends with exactly its budget, no
grid point twice, no two random trials alike, every result in the study, a report
rebuilt from the study alone, and the best trial's command reproducing its result as a
plain `fit`. Then the failures of a cluster: a worker SIGKILLed mid-trial (its trial is
continued where it stopped, not started over), GPUs handed to concurrent trials, and
the settings and storages that cannot work.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from lightning_template_core._callbacks.monitor_history import history_path, read_history
from lightning_template_core.sweep import cli
from lightning_template_core.sweep.optuna_sweep import SweepOptions, open_study
from lightning_template_core.sweep.spec import load_spec
from lightning_template_core.sweep.storage import open_storage

from conftest import ROOT, TASK, TINY, run_command, run_module
from database_server import REQUIRED, missing_reason, postgres_server

SHIPPED_METRIC = yaml.safe_load((ROOT / "configs" / "sweep" / f"{TASK}.yaml").read_text())["metric"]
TRIAL = [*TINY, "trainer.max_epochs=1", "test_after_fit=false"]


@pytest.fixture(scope="session")
def postgres_url():
    reason = missing_reason()
    if reason:
        if os.environ.get(REQUIRED):
            pytest.fail(f"{REQUIRED} is set (as in CI) but {reason}")
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


def storage_url(kind: str, request, tmp_path: Path) -> str:
    if kind == "journal":
        return f"journal:{tmp_path / 'shared' / 'study.log'}"
    return request.getfixturevalue("postgres_url")


def write_sweep(path: Path, method: str, parameters: dict, **extra) -> Path:
    config = {"method": method, "metric": SHIPPED_METRIC, "parameters": {"experiment": {"value": TASK}, **parameters}}
    path.write_text(yaml.safe_dump({**config, **extra}))
    return path


def sweep_process(config: Path, sweep_dir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "lightning_template_core.sweep", str(config), "--dir", str(sweep_dir), *args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled", **(env or {})}
    return subprocess.Popen(
        command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen, timeout: int = 600) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-5000:]
    return output


def load(storage: str, name: str) -> optuna.Study:
    if storage.startswith("journal:"):
        backend = optuna.storages.journal.JournalFileBackend(storage.removeprefix("journal:"))
        return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))
    return optuna.load_study(study_name=name, storage=storage.replace("postgresql://", "postgresql+psycopg://"))


@pytest.mark.slow
# Each storage's lock (a server's advisory lock, the journal's file lock) and each way of choosing trials (a grid
# point assigned under the lock, random suggestions seeded per trial) once: the choice runs under whichever lock
# the storage has, so the other two pairs add time, not a guarantee.
@pytest.mark.parametrize(("kind", "method"), [("postgresql", "grid"), ("journal", "random")])
def test_two_processes_on_one_study_run_its_budget_once_and_report_it_anywhere(tmp_path, request, kind, method):
    storage = storage_url(kind, request, tmp_path)
    lrs = [0.01, 0.03, 0.1]  # three trials for four workers: the cap is raced, and must hold
    if method == "grid":
        parameters = {"model.optimizer.lr": {"values": lrs}}
    else:
        parameters = {"model.optimizer.lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 0.3}}
    config = write_sweep(tmp_path / "shared.yaml", method, parameters, run_cap=3)
    name = f"{method}-{tmp_path.name}"  # the server outlives the test: a study of its own
    shared = ["--storage", storage, "--study-name", name, "--workers", "2", *TRIAL]
    processes = [sweep_process(config, tmp_path / machine, *shared) for machine in ("a", "b")]
    outputs = [finish(process) for process in processes]

    trials = load(storage, name).trials
    assert len(trials) == 3, outputs  # run_cap counts every process's trials
    assert all(t.state == TrialState.COMPLETE and t.value is not None for t in trials)
    chosen = [t.params["model.optimizer.lr"] for t in trials]
    assert len(set(chosen)) == 3  # no point twice: the grid, and random workers seeded per trial
    if method == "grid":
        assert sorted(chosen) == lrs
    ran = sorted(int(d.name[-4:]) for machine in ("a", "b") for d in (tmp_path / machine).glob("trial_*"))
    assert ran == [t.number for t in trials]  # each trial ran once, in one of the two processes

    # the report, from the study alone, on a "machine" that ran none of its trials
    report = tmp_path / "elsewhere"
    run_module("sweep", str(config), "--dir", str(report), "--report", *shared, run_dir=report, timeout=300)
    table = (report / "trials.csv").read_text().splitlines()
    assert len(table) == 4 and all(row.split(",")[1] == "complete" for row in table[1:])
    best = json.loads((report / "best.json").read_text())
    assert best["trial"] == load(storage, name).best_trial.number
    if method == "grid":  # once: it does not depend on the storage
        # the best trial's command, as a plain fit, trains the same model to the same result
        words = shlex.split(best["command"])
        run = run_command(words[0], tmp_path / "best", *words[1:])
        final = [line[SHIPPED_METRIC["name"]] for line in read_history(history_path(run.run_dir))]
        assert final[-1] == pytest.approx(best[SHIPPED_METRIC["name"]], rel=1e-6)


def wait_for_validations(process: subprocess.Popen, run_dir: Path, count: int) -> None:
    deadline = time.monotonic() + 300
    while len(read_history(history_path(run_dir))) < count:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0][-3000:]
        time.sleep(0.2)


def wait_for_stop(fit_log: Path) -> None:
    """Until the fit writing ``fit_log`` has said that it stopped on a signal."""
    deadline = time.monotonic() + 300
    while "Stopped: " not in fit_log.read_text():
        assert time.monotonic() < deadline, fit_log.read_text()[-3000:]
        time.sleep(0.2)


@pytest.mark.slow
def test_a_killed_or_stopped_sweep_continues_its_trial_where_it_stopped(tmp_path):
    config = write_sweep(tmp_path / "killed.yaml", "grid", {"model.optimizer.lr": {"values": [0.05]}})
    budget = [*TINY, "trainer.max_epochs=4", "trainer.val_check_interval=1.0", "test_after_fit=false"]
    budget.append(
        "+callbacks.pace._target_=lightning_template_core.testing.stop_points.PauseAfterValidation"
    )  # outlasts the test's reads
    sweep_dir, run_dir = tmp_path / "sweep", tmp_path / "sweep" / "trial_0000"
    # 1. SIGKILL to the sweep after the trial's first validation: no handler runs (its fit gets SIGTERM from
    # the kernel and saves); the trial stays "running" until its heartbeat is older than --stale-after
    first = sweep_process(config, sweep_dir, *budget)
    wait_for_validations(first, run_dir, 1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    wait_for_stop(run_dir / "fit.log")  # the trial's fit, orphaned, may validate once more before it stops
    validated = len(read_history(history_path(run_dir)))
    # 2. the next sweep takes the lost trial over; SIGTERM to it (a preemption) after its fit's first validation
    second = sweep_process(config, sweep_dir, "--stale-after", "3", *budget)
    wait_for_validations(second, run_dir, validated + 1)
    second.send_signal(signal.SIGTERM)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 130 and "trial 0 lost its worker" in output, output[-3000:]
    assert "queued again" in output
    # 3. the same command again finishes the trial
    third = finish(sweep_process(config, sweep_dir, *budget))
    assert "trial 2 (continues trial 0)" in third

    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    lost, stopped, retry = study.trials
    assert lost.state == TrialState.FAIL and "no heartbeat" in lost.user_attrs["error"]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["error"] == "the sweep was interrupted"
    assert retry.state == TrialState.COMPLETE and stopped.user_attrs["retry_of"] == retry.user_attrs["retry_of"] == 0
    assert [d.name for d in sweep_dir.glob("trial_*")] == ["trial_0000"]  # one run directory, continued
    attempts = (run_dir / "fit.log").read_text().split("==> ")[1:]
    assert len(attempts) == 3 and all("ckpt_path=last: continuing from" in a for a in attempts[1:])
    assert all("(step 0)" not in a for a in attempts[1:])  # from the state each stop saved, not the start
    history = read_history(history_path(run_dir))
    assert [line["epoch"] for line in history] == [0, 1, 2, 3]  # every validation once: nothing redone

    # the same trial never stopped ends with the same result
    reference = run_command("fit", tmp_path / "reference", *retry.user_attrs["overrides"])
    expected = read_history(history_path(reference.run_dir))[-1][SHIPPED_METRIC["name"]]
    assert retry.value == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_each_concurrent_trial_gets_its_own_gpus(tmp_path):
    config = write_sweep(tmp_path / "gpus.yaml", "grid", {"model.optimizer.lr": {"values": [0.01, 0.1]}})
    # four "GPUs" named as a scheduler would hand them out; the trials train on the CPU and record what they got
    run = sweep_process(config, tmp_path, "--gpus-per-trial", "2", *TRIAL, env={"CUDA_VISIBLE_DEVICES": "4,5,6,7"})
    output = finish(run)
    assert "on 2 worker(s), GPUs per worker: 4,5 | 6,7" in output  # --workers defaults to GPUs / K
    trials = optuna.load_study(study_name="gpus", storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    received = {}  # what each trial's fit process saw, as it recorded it
    for trial in trials:
        attempts = json.loads((tmp_path / f"trial_{trial.number:04d}" / "provenance.json").read_text())["attempts"]
        received[trial.number] = attempts[-1]["visible_gpus"]
    assert set(received.values()) == {"4,5", "6,7"}
    for one in trials:  # trials that ran at the same time never shared a GPU
        for other in trials:
            overlap = one.datetime_start < other.datetime_complete and other.datetime_start < one.datetime_complete
            if one.number < other.number and overlap:
                assert received[one.number] != received[other.number]


def refused(capsys, *argv: str) -> str:
    """Run ``sweep argv`` in-process; it must exit 2 with one paragraph (returned) and no traceback."""
    with pytest.raises(SystemExit) as exit_status:
        cli.run(list(argv))
    err = " ".join(capsys.readouterr().err.split())
    assert exit_status.value.code == 2 and "Traceback" not in err, err
    return err


def test_storages_and_gpus_that_cannot_work_are_refused_naming_the_fix(tmp_path, capsys, monkeypatch):
    config = str(write_sweep(tmp_path / "bad.yaml", "grid", {"model.optimizer.lr": {"values": [0.1, 0.2]}}))
    where = ["--dir", str(tmp_path / "sweep"), *TRIAL]
    assert "is not a study storage this sweep knows: give one of sqlite:///" in refused(
        capsys, config, *where, "--storage", "redis://localhost/0"
    )
    assert "needs a file path after the colon" in refused(capsys, config, *where, "--storage", "journal:")
    # a server that does not answer: named, without its password
    unreachable = refused(capsys, config, *where, "--storage", "postgresql://me:s3cret@127.0.0.1:1/studies")
    assert "Cannot open the study database postgresql+psycopg://me:***@127.0.0.1:1/studies" in unreachable
    assert "s3cret" not in unreachable

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert "--gpus-per-trial 3 needs 3 GPU(s) per trial; this machine shows 2 (CUDA_VISIBLE_DEVICES=0,1)" in refused(
        capsys, config, *where, "--gpus-per-trial", "3"
    )
    too_many = refused(capsys, config, *where, "--gpus-per-trial", "1", "--workers", "3")
    assert "--workers 3 with --gpus-per-trial 1 needs 3 GPUs" in too_many and "at most --workers 2" in too_many

    journal = ["--storage", f"journal:{tmp_path / 'shared.log'}", "--study-name", "lr"]
    assert "has no study 'lr': nothing to report" in refused(capsys, config, *where, *journal, "--report")
    # a study of that name made for another search space: refused with the difference, nothing run
    open_study(load_spec(config), open_storage(journal[1], tmp_path), TRIAL, SweepOptions(study_name="lr"))
    wider = str(write_sweep(tmp_path / "wider.yaml", "grid", {"model.optimizer.lr": {"values": [0.1, 0.2, 0.4]}}))
    changed = refused(capsys, wider, *where, *journal, "--n-trials", "1")
    assert "holds the study 'lr' of a different sweep: parameters changed" in changed
    assert not list((tmp_path / "sweep").glob("trial_*"))
