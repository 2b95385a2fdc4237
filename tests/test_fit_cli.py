"""The `fit` command as a user runs it: a real subprocess, real files in the run directory.

(A fast_dev_run of every task is in test_smoke.py; mistakes in the command line, such as
an unknown experiment, in test_user_errors.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, TINY, expect_user_error


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


def test_module_twin_and_console_script_agree():
    console_script = Path(sys.executable).with_name("fit")
    outputs = []
    for command in ([str(console_script)], [sys.executable, "-m", "lightning_template.fit"]):
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
