"""The `fit` command as a user runs it: a real subprocess, real files in the run directory.

(A fast_dev_run of every task is in test_smoke.py; mistakes in the command line, such as
an unknown experiment, in test_user_errors.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._training.declared_metrics import training_metrics

from conftest import ROOT, TINY, TINY_BY_TASK, expect_user_error, run_module


def test_run_leaves_checkpoint_metrics_and_resolved_config(fit):
    run = fit(*TINY, "trainer.max_steps=3", "trainer.log_every_n_steps=1", "seed=5")
    assert (run.run_dir / "checkpoints" / "last.ckpt").is_file()
    losses = [float(row["train/loss"]) for row in run.metrics() if row["train/loss"]]
    assert len(losses) == 3 and all(0 < loss < 10 for loss in losses)
    config = yaml.safe_load((run.run_dir / "config.yaml").read_text())
    assert config["seed"] == 5 and config["data"]["seed"] == 5 and config["paths"]["output_dir"] == str(run.run_dir)
    checkpoint = torch.load(run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3 and "rng_states" in checkpoint
    assert run.summary()["last_checkpoint"] == str(run.run_dir / "checkpoints" / "last.ckpt")


def test_a_run_with_one_validation_names_its_last_and_best_checkpoints(fitted):
    """Testing the best checkpoint restores the callback as that file saved it, before last.ckpt existed."""
    summary = fitted().summary()  # one epoch of the tiny settings
    assert summary["last_checkpoint"] == summary["run_dir"] + "/checkpoints/last.ckpt"
    assert Path(summary["best_checkpoint"]).is_file() and summary["test"]


@pytest.mark.parametrize("task", list(TINY_BY_TASK))
def test_what_a_module_declares_it_logs_while_training_is_what_it_logs(shared_runs, task):
    """``monitor=train/...`` is checked against the declaration before a run; one epoch logs each name."""
    run = shared_runs.get("fit", *TINY_BY_TASK[task], "trainer.max_epochs=1", "trainer.log_every_n_steps=1")
    logged = {name for row in run.metrics() for name, value in row.items() if value}
    expected = training_metrics(compose_fit(TINY_BY_TASK[task]))
    assert sorted(name for name in logged if name.startswith("train/")) == sorted(expected)


def test_module_twin_and_console_script_agree():
    console_script = Path(sys.executable).with_name("fit")
    outputs = []
    for command in ([str(console_script)], [sys.executable, "-m", "lightning_template_core.fit"]):
        out = subprocess.run([*command, "--cfg", "job", "seed=7"], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    assert outputs[0] == outputs[1] and "seed: 7" in outputs[0]


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["data.global_batch_size=30", "data.micro_batch_size=8"], ["data.global_batch_size=30", "micro_batch_size=8"]),
        (["data.micro_batch_size=16", "trainer.accumulate_grad_batches=3"], ["contradicts"]),
        (["trainer.accelerator=gpu"], ["trainer settings are not possible: No supported gpu backend found."]),
        (["trainer.precision=13-bogus"], ["trainer.precision=13-bogus", "32-true"]),
        (["data.micro_batch_size=16", "trainer.limit_train_batches=3"], ["limit_train_batches=3", "multiple of 4"]),
        (["ckpt_path=/nonexistent/last.ckpt"], ["ckpt_path=/nonexistent/last.ckpt does not exist"]),
    ],
)
def test_bad_settings_get_one_clear_paragraph(fit, overrides, fragments):
    run = fit(*TINY, "data.global_batch_size=64", "trainer.max_steps=1", *overrides, check=False)
    expect_user_error(run, *fragments)
    assert run.returncode == 2


def test_corrupt_checkpoint_is_refused_before_training(fit, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    run = fit(*TINY, f"ckpt_path={bad}", check=False)
    expect_user_error(run, "could not be read as a checkpoint")
    assert not (run.run_dir / "checkpoints").exists()


def test_a_run_records_the_code_and_environment_that_trained_it(fitted):
    """provenance.json: the checkout's commit and state as git reports them (or why there is none), the versions."""
    run_dir = fitted().run_dir
    (attempt,) = json.loads((run_dir / "provenance.json").read_text())["attempts"]
    assert attempt["from_step"] == 0 and attempt["command"].startswith("fit ") and attempt["world_size"] == 1
    assert attempt["versions"]["torch"] == torch.__version__
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    code = attempt["code"]
    if head.returncode != 0:  # a project baked but not yet committed
        assert code["commit"] is None and "not a git checkout" in code["why"]
        return
    assert code["commit"] == head.stdout.strip()
    if code.get("diff_file"):
        assert (run_dir / code["diff_file"]).read_text().startswith("diff --git")
    else:
        changes = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD"], capture_output=True, text=True).stdout
        assert changes == "" or ".py" not in changes  # no source change went unrecorded


@pytest.fixture
def small_disk(tmp_path):
    """A file system of its own, 4 MiB of memory (tmpfs: mounting needs root, as in CI's container)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({done.stderr.strip()}): needs root")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _fill(disk: Path, leave: int) -> Path:
    """A file that leaves ``leave`` bytes free on ``disk``."""
    ballast = disk / "ballast"
    ballast.write_bytes(bytes(max(shutil.disk_usage(disk).free - leave, 0)))
    return ballast


def test_a_full_disk_stops_fit_in_one_paragraph_and_the_run_continues_once_there_is_room(fitted, small_disk):
    """Room for the run's small files and one and a half checkpoints: the first checkpoint is written, the
    second fills the disk. Freed, the same command with ckpt_path=last ends as the uninterrupted run did."""
    straight = fitted()
    files = [path for path in straight.run_dir.rglob("*") if path.is_file()]
    checkpoint = (straight.run_dir / "checkpoints" / "last.ckpt").stat().st_size
    small = sum(-(-path.stat().st_size // 4096) * 4096 for path in files if path.suffix != ".ckpt")
    ballast = _fill(small_disk, small + checkpoint * 3 // 2)
    command = [*TINY, "trainer.max_epochs=1", f"hydra.run.dir={small_disk / 'run'}"]
    full = run_module("fit", *command, run_dir=small_disk / "run", check=False)
    expect_user_error(full, f"Cannot write {small_disk / 'run'}", "(No space left on device): free space there")
    assert not [path for path in small_disk.rglob("*partial*")], "a half-written file was left"
    ballast.unlink()
    continued = run_module("fit", *command, "ckpt_path=last", run_dir=small_disk / "run")
    assert "continuing from" in continued.output
    assert continued.summary()["global_steps"] == straight.summary()["global_steps"]
    assert continued.summary()["test"] == straight.summary()["test"]
