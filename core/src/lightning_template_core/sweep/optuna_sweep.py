"""The local sweep: an Optuna study (SQLite, a database server or a journal file), one ``fit`` process per trial.

Re-running the same command loads the study and adds trials; several ``sweep``
processes, on any machines that reach the storage, and ``--workers`` threads in each
share it. The sampler follows the file's ``method`` (grid: GridSampler, random:
RandomSampler, bayes: TPE) and pruning its ``early_terminate`` (hyperband), driven by
the metric at each validation.

Across processes: a trial is started under the study's lock after counting the trials
already there, so ``run_cap`` and the grid hold whatever process runs which trial; the
sampler is seeded per trial from ``--seed`` and the trial's number, so concurrent
workers never start from the same suggestions (and ``--seed`` reproduces a one-worker
sweep). Optuna's ``study.optimize`` is not used: it cannot take that lock, and with
threads it reseeds its sampler at random.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import Trial, TrialState

from lightning_template_core._errors import UserError
from lightning_template_core._files.atomic import make_folder
from lightning_template_core._files.directory_lock import wait_until_free
from lightning_template_core.sweep.gpu_slots import worker_slots
from lightning_template_core.sweep.liveness import (
    RETRY_OF,
    Heartbeat,
    fail_and_retry,
    original_number,
    reclaim_lost_trials,
)
from lightning_template_core.sweep.spec import Parameter, SweepSpec
from lightning_template_core.sweep.storage import StudyStorage, open_storage
from lightning_template_core.sweep.trial_process import (
    TrialCancelled,
    failure_reason,
    is_finite,
    logged_metrics,
    lr_used,
    run_trial,
)

PRUNERS = ("auto", "hyperband", "median", "none")
SCALAR_TYPES = (bool, int, float, str)


class TrialFailed(Exception):
    """The trial's ``fit`` crashed or logged no usable metric: the trial is marked failed, the sweep goes on."""


@dataclass(frozen=True)
class SweepOptions:
    n_trials: int | None = None  # trials this process adds; None: up to the file's run_cap (grid: the whole grid)
    timeout: float | None = None  # seconds after which no new trial starts
    workers: int | None = None  # trials at once (threads, each with its own fit); None: 1, or GPUs / gpus_per_trial
    pruner: str = "auto"
    seed: int = 0
    storage: str | None = None  # None: study.db in the sweep directory
    study_name: str | None = None  # None: the sweep file's name
    gpus_per_trial: int | None = None  # None: every trial sees the GPUs the sweep sees
    stale_after: float = 120.0  # seconds without a heartbeat after which a running trial is lost and retried


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


def trial_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial ``number``: distinct per trial, the same for the same ``--seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's, without its study.stop() when a told trial ends the grid: valid only inside
    study.optimize, which the sweep does not use (its budget counts the grid)."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: TrialState, values) -> None:
        pass


def make_sampler(spec: SweepSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The file's method, with Optuna 5's defaults written out (a new major version may change them)."""
    if spec.method == "grid":
        return GridSampler({p.name: _categorical_choices(p) for p in spec.searched}, seed=seed)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=10, n_ei_candidates=24, multivariate=False, constant_liar=False
    )


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


def study_name(spec: SweepSpec, options: SweepOptions) -> str:
    return options.study_name or spec.name


def open_study(spec: SweepSpec, where: StudyStorage, extra: list[str], options: SweepOptions) -> optuna.Study:
    """Create the study in ``where``, or load it and check it was made for the same sweep."""
    optuna.logging.set_verbosity(logging.ERROR)  # _announce says what happens to each trial
    name = study_name(spec, options)
    study = optuna.create_study(
        study_name=name,
        storage=where.storage,
        direction=spec.goal,
        sampler=make_sampler(spec, options.seed),
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
            f"{where.shown} holds the study {name!r} of a different sweep: {', '.join(was)} changed since it was"
            f" created (was {json.dumps(was)}). Its trials would not be comparable: give another --study-name (or"
            " --dir) for the new sweep, or restore the old settings to resume it."
        )
    return study


def trial_dir(sweep_dir: Path, number: int) -> Path:
    return sweep_dir / f"trial_{number:04d}"


def objective_for(spec: SweepSpec, sweep_dir: Path, extra: list[str], gpus: str | None, cancel: threading.Event):
    """Run one trial: sample, run ``fit`` (a retry continues its run), report each validation, return the last."""

    def objective(trial: Trial) -> float:
        values = {p.name: suggest(trial, p) for p in spec.searched}
        run_dir = trial_dir(sweep_dir, original_number(trial))
        continuing = RETRY_OF in trial.user_attrs
        overrides = [*spec.overrides(values, extra), *(["ckpt_path=last"] if continuing else [])]
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("overrides", spec.overrides(values, extra))

        def report(step: int, value: float) -> bool:
            if not math.isfinite(value):
                return False  # the final check fails the trial; pruners cannot rank a NaN
            trial.report(value, step)
            return trial.should_prune()

        if continuing and not wait_until_free(run_dir, timeout=600):
            trial.set_user_attr("error", f"{run_dir} is still held by the lost attempt's fit after 10 minutes")
            raise TrialFailed(trial.user_attrs["error"])
        outcome = run_trial(overrides, run_dir, spec.metric, report, gpus=gpus, cancel=cancel)
        lr = lr_used(run_dir)
        if lr is not None:
            trial.set_user_attr("lr_used", lr)  # for a report written on another machine
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


def _announce(trial: optuna.trial.FrozenTrial) -> None:
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    if trial.state == TrialState.COMPLETE:
        result = f"{trial.value:.6g}"
    elif trial.state == TrialState.PRUNED:
        result = f"pruned after validation {trial.user_attrs.get('pruned_at_validation', '?')}"
    else:
        result = f"{trial.state.name.lower()}: {trial.user_attrs.get('error', 'see its fit.log')}"
    again = f" (continues trial {trial.user_attrs[RETRY_OF]})" if RETRY_OF in trial.user_attrs else ""
    print(f"trial {trial.number}{again}: {params} -> {result}", flush=True)


def study_cap(spec: SweepSpec, options: SweepOptions) -> int | None:
    """Trials the whole study may hold (retries not counted): the grid, else the file's run_cap; None: no cap."""
    if spec.method == "grid":
        return math.prod(len(p.choices) for p in spec.searched)
    if options.n_trials is not None:
        return None  # --n-trials N: N more from this process, whatever run_cap says
    cap = spec.raw.get("run_cap")
    if not isinstance(cap, int) or cap < 1:
        raise UserError(f"{spec.path} sets no run_cap: say how many trials to run with --n-trials N.")
    return cap


def counted(study: optuna.Study, grid: bool) -> int:
    """Trials that count against the budget: every trial but the retries (a retry continues its trial); for a
    grid, the trials given a grid point (not ones added to the study by hand)."""
    trials = [t for t in study.get_trials(deepcopy=False) if RETRY_OF not in t.user_attrs]
    return sum("grid_id" in t.system_attrs for t in trials) if grid else len(trials)


class Budget:
    """What this process may still start: its own ``--n-trials`` and its timeout; the study's cap is counted live."""

    def __init__(self, cap: int | None, n_trials: int | None, timeout: float | None, grid: bool) -> None:
        self.cap, self.left, self.grid = cap, n_trials, grid
        self.deadline = time.monotonic() + timeout if timeout is not None else math.inf
        self._lock = threading.Lock()

    def take(self, study: optuna.Study) -> str:
        """``start`` a trial (a queued retry, or a new one in budget), ``wait`` for running ones, or ``stop``."""
        with self._lock:
            if (self.left is not None and self.left <= 0) or time.monotonic() > self.deadline:
                return "stop"
            if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return "start"  # a retry (or an enqueued trial): it is counted already
            if self.cap is None or counted(study, self.grid) < self.cap:
                if self.left is not None:
                    self.left -= 1
                return "start"
            # the budget is spent; a trial still running may yet be lost and need a worker
            return "wait" if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) else "stop"


def _finish(study: optuna.Study, trial: Trial, objective) -> None:
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    except TrialFailed:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    except (TrialCancelled, KeyboardInterrupt):
        fail_and_retry(study, study._storage.get_trial(trial._trial_id), "the sweep was interrupted")
        raise
    except BaseException as err:
        study._storage.set_trial_user_attr(trial._trial_id, "error", f"the sweep failed: {err!r}")
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    else:
        study.tell(trial, value, skip_if_finished=True)
    _announce(study._storage.get_trial(trial._trial_id))


def _work(spec, where, sweep_dir, extra, options, budget, gpus, cancel) -> None:
    """One worker: start trials under the study's lock until the budget says stop."""
    name = study_name(spec, options)
    study = optuna.load_study(study_name=name, storage=where.storage, pruner=make_pruner(spec, options.pruner))
    objective = objective_for(spec, sweep_dir, extra, gpus, cancel)
    beat = max(1.0, options.stale_after / 4)
    while not cancel.is_set():
        with where.lock.held(name):
            for number in reclaim_lost_trials(study, options.stale_after):
                print(f"trial {number} lost its worker (no heartbeat for {options.stale_after:.0f} s): retrying it")
            decision = budget.take(study)
            if decision == "start":
                study.sampler = make_sampler(spec, options.seed)  # what ask() consults (the grid point)
                trial = study.ask()
        if decision == "stop":
            return
        if decision == "wait":
            cancel.wait(beat)
            continue
        if spec.method != "grid":  # a grid's order is drawn from --seed once: every trial must see the same
            study.sampler = make_sampler(spec, trial_seed(options.seed, trial.number))  # what suggestions draw from
        with Heartbeat(trial, beat):
            _finish(study, trial, objective)


def run_study(spec: SweepSpec, sweep_dir: Path, extra: list[str], options: SweepOptions) -> optuna.Study:
    """Run trials as ``options`` say, then return the study (all its trials, every process's)."""
    if options.stale_after < 1:
        raise UserError(f"--stale-after {options.stale_after:g} must be at least 1 second (default 120).")
    if options.n_trials is not None and options.n_trials < 0:
        raise UserError(f"--n-trials {options.n_trials} must be 0 or more.")
    workers, slots = worker_slots(options.gpus_per_trial, options.workers)
    make_folder(sweep_dir, "--dir")
    where = open_storage(options.storage, sweep_dir)
    name = study_name(spec, options)
    if options.n_trials == 0 and name not in optuna.study.get_all_study_names(where.storage):
        raise UserError(f"{where.shown} has no study {name!r}: nothing to report (check --storage, --study-name)")
    print(f"Sweep {spec.name} ({spec.method}, {spec.goal} {spec.metric}) in {where.shown}", flush=True)
    study = open_study(spec, where, extra, options)
    cap = study_cap(spec, options)
    budget = Budget(cap, options.n_trials, options.timeout, grid=spec.method == "grid")
    planned = f"up to {cap} in all (every process's)" if options.n_trials is None else f"{options.n_trials} more"
    gpus = "" if slots[0] is None else f", GPUs per worker: {' | '.join(slots)}"
    print(f"{len(study.trials)} trial(s) in the study; running {planned} on {workers} worker(s){gpus}", flush=True)
    if options.n_trials == 0:
        return study
    cancel = threading.Event()
    if workers == 1:  # in this thread, so Ctrl-C reaches the running trial at once
        _work(spec, where, sweep_dir, extra, options, budget, slots[0], cancel)
        return study
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_work, spec, where, sweep_dir, extra, options, budget, slot, cancel) for slot in slots]
        try:
            while not all(f.done() for f in futures):
                done, _ = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
                if any(f.exception() for f in done):
                    cancel.set()  # one worker failed (not a trial: the storage, say): stop the others' trials too
        except KeyboardInterrupt:
            cancel.set()
            raise
    errors = [f.exception() for f in futures if f.exception() is not None]
    errors.sort(key=lambda err: isinstance(err, TrialCancelled))  # the cause before the trials it stopped
    if errors:
        raise errors[0]
    return study
