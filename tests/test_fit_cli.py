"""The `fit` command as a user runs it: a real subprocess, real files in the run directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, TINY


def test_fast_dev_run_trains_validates_and_tests(fit):
    run = fit(*TINY, "debug=fast_dev_run")
    assert "fit summary" in run.stdout
    summary = run.summary()
    assert summary["global_steps"] == 1 and "test/acc" in summary["test"]


def test_group_norm_run_leaves_checkpoint_metrics_and_resolved_config(fit):
    run = fit("experiment=cnn", "model.norm=group", "trainer.max_steps=3", "trainer.log_every_n_steps=1", *TINY[:1])
    assert (run.run_dir / "checkpoints" / "last.ckpt").is_file()
    losses = [float(row["train/loss"]) for row in run.metrics() if row["train/loss"]]
    assert len(losses) == 3 and all(0 < loss < 10 for loss in losses)
    config = yaml.safe_load((run.run_dir / "config.yaml").read_text())
    assert config["model"]["norm"] == "group" and config["paths"]["output_dir"] == str(run.run_dir)
    checkpoint = torch.load(run.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3 and "rng_states" in checkpoint
    assert run.summary()["last_checkpoint"] == str(run.run_dir / "checkpoints" / "last.ckpt")


def test_module_twin_and_console_script_agree():
    console_script = Path(sys.executable).with_name("fit")
    outputs = []
    for command in ([str(console_script)], [sys.executable, "-m", "lightning_template.fit"]):
        out = subprocess.run([*command, "--cfg", "job", "seed=7"], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    assert outputs[0] == outputs[1] and "seed: 7" in outputs[0]


def expect_user_error(run, *fragments: str) -> None:
    assert run.returncode != 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    for fragment in fragments:
        assert fragment in " ".join(run.stderr.split()), run.stderr[-3000:]


def test_unknown_experiment(fit):
    expect_user_error(fit("experiment=nope", check=False), "Could not find 'experiment/nope'", "cnn_cifar10")


def test_missing_cifar_directory(fit, tmp_path):
    run = fit("experiment=cnn_cifar10", f"data.root={tmp_path}/absent", "debug=fast_dev_run", check=False)
    expect_user_error(run, "CIFAR-10 not found", "data.download=true")
    assert run.returncode == 2


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["data.global_batch_size=30", "data.micro_batch_size=8"], ["data.global_batch_size=30", "micro_batch_size=8"]),
        (["trainer.accumulate_grad_batches=3", "data.micro_batch_size=32"], ["contradicts"]),
        (["trainer.accelerator=gpu"], ["trainer settings are not possible: No supported gpu backend found."]),
        (["trainer.precision=13-bogus"], ["trainer settings are not possible", "13-bogus"]),
        (["data.micro_batch_size=32", "trainer.limit_train_batches=3"], ["limit_train_batches=3", "multiple of 4"]),
        (["ckpt_path=/nonexistent/last.ckpt"], ["ckpt_path=/nonexistent/last.ckpt does not exist"]),
    ],
)
def test_bad_settings_get_one_clear_paragraph(fit, overrides, fragments):
    run = fit(*TINY, "trainer.max_steps=1", *overrides, check=False)
    expect_user_error(run, *fragments)
    assert run.returncode == 2


def test_corrupt_checkpoint_is_refused_before_training(fit, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    run = fit(*TINY, f"ckpt_path={bad}", check=False)
    expect_user_error(run, "could not be read as a checkpoint")
    assert not (run.run_dir / "checkpoints").exists()
