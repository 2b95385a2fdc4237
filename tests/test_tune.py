"""The `tune` command: real finders on one device, an override file `fit` accepts, and its refusals."""

from __future__ import annotations

import shlex

import lightning.pytorch as L
import pytest
import torch
import yaml

from lightning_template_core._errors import UserError
from lightning_template_core.tune import _refuse_manual_optimization, fit_command, largest_divisor_at_most

from conftest import CONFIG_DIR, TASK, TINY, TINY_BY_TASK, run_command

FAST_FINDERS = ["tune.max_micro_batch_size=16", "tune.steps_per_trial=1", "tune.lr_num_training=15"]


@pytest.mark.parametrize(("number", "bound", "expected"), [(128, 64, 64), (96, 64, 48), (64, 1000, 64), (7, 4, 1)])
def test_largest_divisor_at_most(number, bound, expected):
    assert largest_divisor_at_most(number, bound) == expected


def printed_fit_command(output: str) -> list[str]:
    """The arguments of the ``fit`` command tune printed ("Use it: fit ..."), as the shell would split them."""
    (line,) = [line for line in output.splitlines() if line.startswith("Use it: ")]
    command = shlex.split(line.removeprefix("Use it: "))
    assert command[0] == "fit", line
    return command[1:]


def tuned_files_in_the_project() -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in (CONFIG_DIR / "tuned").glob("*.yaml")}


def tune_then_fit(tmp_path, tiny: list[str], experiment: str) -> str:
    """Tune for a 2-process fit (tune itself runs on one device), then run the fit command tune printed."""
    project_files = tuned_files_in_the_project()
    tuned = run_command("tune", tmp_path / "tune", *tiny, "data.global_batch_size=32", "trainer=ddp_cpu", *FAST_FINDERS)
    path = tuned.run_dir / "tuned" / f"{experiment}.yaml"  # the tune run's own directory, by default
    assert path.read_text().startswith("# @package _global_\n")
    assert tuned_files_in_the_project() == project_files  # nothing written into the project's configs/tuned/
    values = yaml.safe_load(path.read_text())
    assert values["data"] == {"global_batch_size": 32, "micro_batch_size": 16}  # bound 16 = 32 / 2 devices
    assert values["lr_reference_batch_size"] == 32 and values["model"]["optimizer"]["lr"] > 0
    assert (tuned.run_dir / "lr_find.png").stat().st_size > 1000
    assert "tune runs on one device" in tuned.output and f"Wrote {path}" in tuned.stdout
    command = printed_fit_command(tuned.stdout)
    assert command == [
        f"experiment={experiment}",
        f"hydra.searchpath=[file://{tuned.run_dir.resolve()}]",
        f"+tuned={experiment}",
    ]

    # the printed command as it is, with the tiny settings and a short run after it
    fast = [*tiny, "trainer=cpu", "trainer.max_steps=2", "test_after_fit=false"]
    run = run_command("fit", tmp_path / "fit", *command, *fast)
    assert run.summary()["global_steps"] == 2
    config = yaml.safe_load((run.run_dir / "config.yaml").read_text())
    assert config["model"]["optimizer"]["lr"] == values["model"]["optimizer"]["lr"]
    return run.summary()["layout"]


# every task (the first one in the fast suite)
@pytest.mark.parametrize("task", [t if t == TASK else pytest.param(t, marks=pytest.mark.slow) for t in TINY_BY_TASK])
def test_tune_writes_an_override_that_fit_runs(tmp_path, task):
    layout = tune_then_fit(tmp_path, TINY_BY_TASK[task], task)
    assert layout == "global batch 32 = micro 16 x accumulate 2 x 1 device(s)"


def test_tune_config_dir_writes_where_the_user_says(tmp_path):
    kept = tmp_path / "kept configs"  # a space, as user folders have: the printed command quotes it for the shell
    tuned = run_command(
        "tune", tmp_path / "tune", *TINY, "tune.lr_find=false", f"tune.config_dir={kept}", *FAST_FINDERS
    )
    path = kept / "tuned" / f"{TASK}.yaml"
    assert "micro_batch_size" in yaml.safe_load(path.read_text())["data"]
    assert not (tuned.run_dir / "tuned").exists()
    command = printed_fit_command(tuned.stdout)
    assert command == [f"experiment={TASK}", f"hydra.searchpath=[file://{kept.resolve()}]", f"+tuned={TASK}"]
    run = run_command("fit", tmp_path / "fit", *command, *TINY, "trainer.max_steps=2", "test_after_fit=false")
    assert run.summary()["global_steps"] == 2


def test_the_fit_command_needs_no_search_path_for_the_project_configs(tmp_path):
    assert fit_command(TASK, CONFIG_DIR, TASK) == f"fit experiment={TASK} +tuned={TASK}"
    assert fit_command(TASK, tmp_path, "mine") == (
        f"fit experiment={TASK} 'hydra.searchpath=[file://{tmp_path.resolve()}]' +tuned=mine"
    )


def test_nothing_to_tune_is_one_paragraph(tmp_path):
    run = run_command("tune", tmp_path / "t", "tune.scale_batch_size=false", "tune.lr_find=false", check=False)
    assert run.returncode == 2 and "Traceback" not in run.output, run.output[-3000:]
    assert "nothing to tune" in run.stderr


class ManualModule(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer = torch.nn.Linear(2, 2)


def test_manual_optimization_is_refused():
    with pytest.raises(UserError, match="manual optimization"):
        _refuse_manual_optimization(ManualModule())
