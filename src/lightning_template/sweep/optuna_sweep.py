"""The local sweep: an Optuna study in a SQLite file, one ``fit`` process per trial.

Re-running the same command loads the study and adds trials; several ``sweep``
processes (or ``--workers``) can share it. The sampler follows the file's ``method``
(grid: GridSampler, random: RandomSampler, bayes: TPE) and pruning its
``early_terminate`` (hyperband), driven by the metric at each validation.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from lightning_template.errors import UserError
from lightning_template.sweep.spec import Parameter, SweepSpec
from lightning_template.sweep.trial_process import failure_reason, is_finite, logged_metrics, run_trial

DB_NAME = "study.db"
PRUNERS = ("auto", "hyperband", "median", "none")
SCALAR_TYPES = (bool, int, float, str)


class TrialFailed(Exception):
    """The trial's ``fit`` crashed or logged no usable metric: the trial is marked failed, the sweep goes on."""


@dataclass(frozen=True)
class SweepOptions:
    n_trials: int | None = None  # more trials to run; None: up to the file's run_cap (grid: the whole grid)
    timeout: float | None = None  # seconds after which no new trial starts
    workers: int = 1  # trials run at once (threads, each with its own fit process)
    pruner: str = "auto"
    seed: int = 0


def storage_url(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / DB_NAME).resolve()}"


def _storage(sweep_dir: Path) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # heartbeats mark a trial left RUNNING by a killed sweep as failed when the study is next used
        return optuna.storages.RDBStorage(
            storage_url(sweep_dir),
            engine_kwargs={"connect_args": {"timeout": 60}},
            heartbeat_interval=30,
            grace_period=120,
        )


def _categorical_choices(parameter: Parameter) -> list[Any]:
    """Optuna stores scalars only: other choices (lists) are offered as the text W&B would pass."""
    if all(isinstance(c, SCALAR_TYPES) for c in parameter.choices):
        return list(parameter.choices)
    return [str(c) for c in parameter.choices]


def suggest(trial: Trial, parameter: Parameter) -> Any:
    if parameter.distribution == "categorical":
        return trial.suggest_categorical(parameter.name, _categorical_choices(parameter))
    if parameter.distribution == "int_uniform":
        return trial.suggest_int(parameter.name, parameter.low, parameter.high)
    return trial.suggest_float(parameter.name, parameter.low, parameter.high, log=parameter.log, step=parameter.step)


def make_sampler(spec: SweepSpec, seed: int) -> optuna.samplers.BaseSampler:
    if spec.method == "grid":
        return optuna.samplers.GridSampler({p.name: _categorical_choices(p) for p in spec.searched}, seed=seed)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec, choice: str) -> optuna.pruners.BasePruner:
    """``auto`` follows the file: W&B's hyperband early termination, or none."""
    if choice not in PRUNERS:
        raise UserError(f"--pruner {choice} is not a pruner: choose one of {', '.join(PRUNERS)}.")
    early = dict(spec.early_terminate or {})
    if choice == "none" or (choice == "auto" and not early):
        return optuna.pruners.NopPruner()
    if choice == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    eta = int(early.get("eta", 3))
    max_iter = early.get("max_iter")
    min_iter = early.get("min_iter") or (max(1, int(max_iter / eta ** int(early.get("s", 0)))) if max_iter else 1)
    return optuna.pruners.HyperbandPruner(
        min_resource=int(min_iter), max_resource=int(max_iter) if max_iter else "auto", reduction_factor=eta
    )


def _identity(spec: SweepSpec, extra: list[str]) -> dict[str, Any]:
    """What makes trials comparable: a study resumed with other settings would mix different experiments."""
    return {"parameters": spec.raw["parameters"], "metric": spec.metric, "goal": spec.goal, "overrides": extra}


def open_study(spec: SweepSpec, sweep_dir: Path, extra: list[str], options: SweepOptions) -> optuna.Study:
    """Create the study in ``sweep_dir``, or load it and check it was made for the same sweep."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(logging.ERROR)  # _announce says what happens to each trial
    storage = _storage(sweep_dir)
    existing = optuna.study.get_all_study_names(storage)
    done = len(optuna.load_study(study_name=spec.name, storage=storage).trials) if spec.name in existing else 0
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        direction=spec.goal,
        # offset by the trials already run: a resumed study must not draw the same points again
        sampler=make_sampler(spec, options.seed + done),
        pruner=make_pruner(spec, options.pruner),
        load_if_exists=True,
    )
    identity = json.loads(json.dumps(_identity(spec, extra)))
    recorded = study.user_attrs.get("sweep")
    if recorded is None:
        study.set_user_attr("sweep", identity)
    elif recorded != identity:
        was = {key: recorded.get(key) for key in identity if identity[key] != recorded.get(key)}
        raise UserError(
            f"{sweep_dir / DB_NAME} holds the study {spec.name!r} of a different sweep: {', '.join(was)} changed"
            f" since it was created (was {json.dumps(was)}). Its trials would not be comparable: give a new --dir"
            " for the new sweep, or restore the old settings to resume it."
        )
    return study


def trial_dir(sweep_dir: Path, number: int) -> Path:
    return sweep_dir / f"trial_{number:04d}"


def objective_for(spec: SweepSpec, sweep_dir: Path, extra: list[str]):
    """The function Optuna calls per trial: sample, run ``fit``, report each validation, return the last."""

    def objective(trial: Trial) -> float:
        values = {p.name: suggest(trial, p) for p in spec.searched}
        run_dir = trial_dir(sweep_dir, trial.number)
        overrides = spec.overrides(values, extra)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("overrides", overrides)

        def report(step: int, value: float) -> bool:
            if not math.isfinite(value):
                return False  # the final check fails the trial; pruners cannot rank a NaN
            trial.report(value, step)
            return trial.should_prune()

        outcome = run_trial(overrides, run_dir, spec.metric, report)
        if outcome.stopped:
            trial.set_user_attr("pruned_at_validation", len(outcome.values))
            raise optuna.TrialPruned()
        if outcome.returncode != 0:
            trial.set_user_attr("error", f"fit exited with status {outcome.returncode}: {failure_reason(run_dir)}")
            raise TrialFailed(trial.user_attrs["error"])
        if not outcome.values:
            logged = ", ".join(logged_metrics(run_dir)) or "nothing"
            reason = (
                f"{spec.metric} was never logged at a validation (logged: {logged}); check metric.name in {spec.path}"
            )
            trial.set_user_attr("error", reason)
            raise TrialFailed(reason)
        if not is_finite(outcome.final):
            trial.set_user_attr("error", f"{spec.metric} is {outcome.final}: the run diverged")
            raise TrialFailed(trial.user_attrs["error"])
        return outcome.final

    return objective


def _announce(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    if trial.state == TrialState.COMPLETE:
        result = f"{trial.value:.6g}"
    elif trial.state == TrialState.PRUNED:
        result = f"pruned after validation {trial.user_attrs.get('pruned_at_validation', '?')}"
    else:
        result = f"{trial.state.name.lower()}: {trial.user_attrs.get('error', 'see its fit.log')}"
    print(f"trial {trial.number}: {params} -> {result}", flush=True)


def _remaining(spec: SweepSpec, study: optuna.Study) -> int:
    """Trials left when no --n-trials is given: the rest of the grid, or up to the file's run_cap."""
    if spec.method == "grid":
        return max(0, math.prod(len(p.choices) for p in spec.searched) - len(study.trials))
    cap = spec.raw.get("run_cap")
    if not isinstance(cap, int) or cap < 1:
        raise UserError(f"{spec.path} sets no run_cap: say how many trials to run with --n-trials N.")
    return max(0, cap - len(study.trials))


def run_study(spec: SweepSpec, sweep_dir: Path, extra: list[str], options: SweepOptions) -> optuna.Study:
    """Run trials as ``options`` say, then return the study (all its trials, earlier runs included)."""
    if options.workers < 1:
        raise UserError(f"--workers {options.workers} must be at least 1.")
    study = open_study(spec, sweep_dir, extra, options)
    n_trials = options.n_trials if options.n_trials is not None else _remaining(spec, study)
    print(f"{len(study.trials)} trial(s) in the study; running {n_trials} more", flush=True)
    if n_trials == 0:
        return study
    study.optimize(
        objective_for(spec, sweep_dir, extra),
        n_trials=n_trials,
        timeout=options.timeout,
        n_jobs=options.workers,
        catch=(TrialFailed,),
        callbacks=[_announce],
        gc_after_trial=False,
    )
    return study
