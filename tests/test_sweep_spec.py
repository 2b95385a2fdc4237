"""Sweep files: W&B's format read the same way by both backends, and every mistake caught before a trial runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_object
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from lightning_template_core._callbacks.rank_agreement import check_ranks_agree
from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._errors import UserError
from lightning_template_core._training.declared_metrics import validation_metrics
from lightning_template_core.sweep import cli
from lightning_template_core.sweep.composition import check_against_fit
from lightning_template_core.sweep.optuna_sweep import SweepOptions, open_study
from lightning_template_core.sweep.spec import override, parse_spec
from lightning_template_core.sweep.storage import open_storage

from conftest import TASK, console_script, expect_user_error

COMMAND = ["${env}", "${interpreter}", "-m", "lightning_template_core.fit", "${args_no_hyphens}"]
SHIPPED_FIT = compose_fit([f"experiment={TASK}"])
GOAL = "maximize" if SHIPPED_FIT.monitor_mode == "max" else "minimize"
VALID = {
    "method": "bayes",
    "metric": {"name": SHIPPED_FIT.monitor, "goal": GOAL},
    "parameters": {
        "data.global_batch_size": {"values": [64, 128]},
        "model.optimizer.lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 1.0},
        "experiment": {"value": TASK},
        "trainer.max_epochs": {"value": 2},
    },
    "command": COMMAND,
}


def spec_with(**changes):
    raw = copy.deepcopy(VALID)
    for key, value in changes.items():
        if key.startswith("param:"):
            raw["parameters"][key[6:]] = value
        else:
            raw[key] = value
    return parse_spec(raw, Path("sweep.yaml"))


def test_valid_file_reads_constants_and_searched_parameters():
    spec = spec_with()
    assert spec.fixed == {"experiment": TASK, "trainer.max_epochs": 2}
    assert [p.name for p in spec.searched] == ["data.global_batch_size", "model.optimizer.lr"]
    assert spec.searched[1].log and spec.searched[0].choices == (64, 128)
    assert spec.name == "sweep" and spec.metric == SHIPPED_FIT.monitor and spec.goal == GOAL


def test_overrides_are_what_wandbs_agent_passes():
    spec = spec_with(**{"param:model.net.widths": {"value": [8, 16]}, "param:trainer.deterministic": {"value": True}})
    values = {"data.global_batch_size": 64, "model.optimizer.lr": 0.0123}
    ours = spec.overrides(values)
    agents = create_sweep_command_args({"args": {k: {"value": v} for k, v in {**spec.fixed, **values}.items()}})
    assert sorted(ours) == sorted(agents["args_no_hyphens"])
    assert override("model.net.widths", [8, 16]) == "model.net.widths=[8, 16]" and "trainer.deterministic=True" in ours


def test_command_line_overrides_replace_constants():
    spec = spec_with()
    overrides = spec.overrides({"data.global_batch_size": 64, "model.optimizer.lr": 0.1}, ["trainer.max_epochs=1"])
    assert "trainer.max_epochs=1" in overrides and "trainer.max_epochs=2" not in overrides


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"method": "hyperopt"}, "method='hyperopt' must be one of grid, random, bayes"),
        ({"metric": {"name": "val/acc"}}, "metric must name the logged metric"),
        ({"param:model": {"parameters": {"norm": {"values": ["group"]}}}}, "Use flat dotted names"),
        ({"param:model.scheduler": {"value": None}}, "write the text null"),
        ({"param:model.net.dropout": {"distribution": "normal", "mu": 0, "sigma": 1}}, "distribution 'normal'"),
        ({"param:model.optimizer.lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}, "positive"),
        ({"param:model.optimizer.lr": {"min": 1.0, "max": 0.1}}, "needs numbers min < max"),
        ({"method": "grid"}, "method=grid needs values: lists, but model.optimizer.lr give a range"),
        ({"command": [*COMMAND[:-1], "${args_no_hyphen}"]}, "'${args_no_hyphen}' is not a macro"),
        ({"command": [*COMMAND[:-1], "${args}"]}, "must pass the parameters as ${args_no_hyphens}"),
        ({"early_terminate": {"type": "median"}}, "early_terminate must be"),
        ({"parameters": {"experiment": {"value": TASK}}}, "every parameter is a constant"),
    ],
)
def test_mistakes_name_the_key_and_the_fix(changes, fragment):
    with pytest.raises(UserError) as raised:
        spec_with(**changes)
    assert fragment in str(raised.value)


def test_hydra_interpolations_in_the_command_are_passed_on():
    spec = spec_with(command=[*COMMAND[:-1], "hydra.run.dir=runs/${oc.env:WANDB_RUN_ID,none}", "${args_no_hyphens}"])
    assert spec.raw["command"][-2].startswith("hydra.run.dir=")


def test_parameter_names_are_checked_against_the_fit_config():
    check_against_fit(spec_with(), [])
    with pytest.raises(UserError, match=r"model\.optimizer\.lrr"):
        check_against_fit(spec_with(**{"param:model.optimizer.lrr": {"values": [0.1, 0.2]}}), [])
    with pytest.raises(UserError, match="experiment"):
        check_against_fit(spec_with(**{"param:experiment": {"values": [TASK, "nope"]}}), [])
    with pytest.raises(UserError, match=r"which the sweep config sweep\.yaml searches"):
        check_against_fit(spec_with(), ["model.optimizer.lr=0.3"])


# The default task's LightningModule, and a user's own module built on it
TASK_MODULE = compose_fit([f"experiment={TASK}"]).model._target_


class OwnModule(get_object(TASK_MODULE)):
    """A user's own module: it may log metrics its parent does not, so it declares its own or none."""


def unlogged_metric_sweep(path: Path) -> Path:
    """A sweep file whose metric, val/accuracy, no task logs (the classifiers log val/acc)."""
    path.write_text(yaml.safe_dump({**VALID, "metric": {"name": "val/accuracy", "goal": "maximize"}}))
    return path


def test_a_metric_fit_never_logs_is_refused_by_check_naming_those_it_logs(tmp_path):
    run = console_script("sweep", str(unlogged_metric_sweep(tmp_path / "typo.yaml")), "--check", check=False)
    logged = ", ".join(validation_metrics(compose_fit([f"experiment={TASK}"])))
    fix = "Set metric.name in the sweep config to one of them."
    expect_user_error(run, str(tmp_path / "typo.yaml"), "metric.name=val/accuracy", f"logs {logged} at each", fix)


def test_the_sweep_refuses_it_before_its_first_trial(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.run([str(unlogged_metric_sweep(tmp_path / "typo.yaml")), "--dir", str(tmp_path / "sweep")])
    assert exited.value.code == 2 and "metric.name=val/accuracy" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()  # no study, no trial


def test_the_metric_of_a_module_that_declares_none_is_not_refused():
    f1 = spec_with(metric={"name": "val/f1", "goal": "maximize"})
    with pytest.raises(UserError, match=r"metric\.name=val/f1"):
        check_against_fit(f1, [f"model._target_={TASK_MODULE}"])
    check_against_fit(f1, [f"model._target_={__name__}.OwnModule"])


def test_a_study_is_resumed_only_by_the_same_sweep(tmp_path):
    spec = spec_with()
    first = open_study(spec, open_storage(None, tmp_path), ["trainer.max_epochs=1"], SweepOptions())
    again = open_study(spec, open_storage(None, tmp_path), ["trainer.max_epochs=1"], SweepOptions())
    assert first.study_name == again.study_name == "sweep"
    with pytest.raises(UserError, match="overrides changed since it was created"):
        open_study(spec, open_storage(None, tmp_path), ["trainer.max_epochs=3"], SweepOptions())
    wider = spec_with(**{"param:data.global_batch_size": {"values": [64, 128, 256]}})
    with pytest.raises(UserError, match="parameters changed"):
        open_study(wider, open_storage(None, tmp_path), ["trainer.max_epochs=1"], SweepOptions())


def test_ranks_with_different_learning_rates_are_refused():
    check_ranks_agree([[0.1, 0.1], [0.1, 0.1]])
    with pytest.raises(UserError, match=r"rank 0: \[0.1\], rank 1: \[0.2\]"):
        check_ranks_agree([[0.1], [0.2]])
