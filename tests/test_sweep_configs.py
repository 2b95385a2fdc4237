"""Every sweep file in configs/sweep/, checked offline as W&B would use it.

W&B sweeps need the W&B server, so what can be checked here is: the file passes W&B's
own schema (the `sweeps` package, W&B's sweep-config code), each parameter is an
override of the composed fit config, and the command W&B's agent builds from a run's
parameters (its own code does the expansion) runs `fit` to the end.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import sweeps
import yaml
from sweeps.grid_search import grid_search_next_runs
from sweeps.random_search import random_search_next_runs
from wandb.wandb_agent import Agent

from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._training.declared_metrics import validation_metrics
from lightning_template_core.sweep.composition import check_against_fit, sample_points
from lightning_template_core.sweep.kfold import check_kfold, is_kfold
from lightning_template_core.sweep.spec import load_spec
from lightning_template_core.sweep.wandb_sweep import wandb_config

from conftest import CONFIG_DIR, TASK, TINY_BY_TASK, Completed, run_module

SWEEP_FILES = sorted((CONFIG_DIR / "sweep").glob("*.yaml"))


@pytest.fixture(params=SWEEP_FILES, ids=lambda path: path.stem)
def sweep_file(request) -> Path:
    return request.param


def test_every_task_has_a_sweep_of_its_embedded_experiment():
    raw = {path.stem: yaml.safe_load(path.read_text()) for path in SWEEP_FILES}
    assert all(raw[task]["parameters"]["experiment"]["value"] == task for task in TINY_BY_TASK)


def test_passes_wandbs_schema(sweep_file):
    config = yaml.safe_load(sweep_file.read_text())
    assert sweeps.schema_violations_from_proposed_config(config) == []


def test_searches_lr_and_batch_size_or_folds_with_valid_overrides_and_a_metric_fit_logs(sweep_file):
    spec = load_spec(str(sweep_file))
    searched = {p.name: p for p in spec.searched}
    if is_kfold(spec):  # a cross-validation searches the LR on every fold, at one batch size
        check_kfold(spec)
    else:
        assert searched["data.global_batch_size"].distribution == "categorical"
    assert "model.optimizer.lr" in searched
    check_against_fit(spec, [])  # what sweep --check runs: fit composed at each choice of every categorical parameter
    # the metric was checked, not passed as unknown: the experiment's model declares what it logs
    assert spec.metric in (validation_metrics(compose_fit(spec.overrides(next(sample_points(spec))))) or ())


def agent_run(config: dict, run_id: str, tmp_path: Path, monkeypatch) -> int:
    """Let W&B's agent expand the sweep command for one run's parameters and run it; return its exit status."""
    # bayes explores the same space; its first suggestion is drawn here by W&B's random search
    if config["method"] == "grid":
        run = grid_search_next_runs([], config)[0]
    else:
        run = random_search_next_runs({**config, "method": "random"})[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    for name in ("WANDB_MODE", "WANDB_DIR", "WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH"):
        monkeypatch.setenv(name, {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}.get(name, run_id))
    agent = Agent(api=None, queue=None, sweep_id="offline")
    agent._sweep_command = config["command"]
    # the server sends the run's parameters as JSON: plain numbers, not numpy's
    args = json.loads(json.dumps(run.config, default=lambda value: value.item()))
    agent._command_run({"run_id": run_id, "program": None, "args": args})
    return agent._run_processes[run_id].wait(timeout=600)


@pytest.mark.slow
def test_the_agents_command_runs_fit(sweep_file, tmp_path, monkeypatch):
    spec = load_spec(str(sweep_file))
    quick = [*TINY_BY_TASK[spec.experiment][1:], "debug=fast_dev_run"]  # [1:]: the file sets experiment=
    config = wandb_config(spec, quick)
    assert agent_run(config, "run1", tmp_path, monkeypatch) == 0
    (run_dir,) = (tmp_path / "runs" / "sweeps" / "wandb").glob("*/run1")
    summary = Completed(0, "", "", run_dir).summary()
    assert summary["global_steps"] == 1 and summary["experiment"] == spec.experiment
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert set(resolved["logger"]) == {"csv", "wandb"}


def test_wandb_backend_offline_is_one_paragraph(tmp_path):
    run = run_module("sweep", TASK, "--backend", "wandb", run_dir=tmp_path, check=False)
    assert run.returncode == 2 and "Traceback" not in run.output, run.output[-3000:]
    assert "W&B sweeps need the W&B server" in " ".join(run.stderr.split())
