"""A k-fold sweep: every setting trained on each fold, ranked by its mean over the folds.

A sweep file that searches ``data.fold`` over ``0 .. K-1`` with ``data.folds: {value: K}``
is a cross-validation: the trials of one setting (the other parameters) differ only in the
fold they validate on. Ranking single trials would pick a lucky fold; the report ranks each
setting that finished every fold by the mean of its metric, with the spread (the standard
deviation over the folds), and the command it prints trains that setting on the usual
held-out split.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lightning_template_core._errors import UserError
from lightning_template_core._files.atomic import atomic_write_text, csv_text
from lightning_template_core.sweep.spec import SweepSpec, fit_command_line, override_key

FOLD, FOLDS = "data.fold", "data.folds"


def is_kfold(spec: SweepSpec) -> bool:
    return any(p.name == FOLD for p in spec.searched)


def check_kfold(spec: SweepSpec) -> None:
    """A k-fold sweep fixes data.folds=K and searches every fold 0 .. K-1."""
    if not is_kfold(spec):
        return
    folds = spec.fixed.get(FOLDS)
    (fold,) = [p for p in spec.searched if p.name == FOLD]
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise UserError(
            f"The sweep config {spec.path} searches {FOLD} but fixes no {FOLDS} of at least 2: fix it (value: K)"
            f" beside {FOLD} searched over every fold (values: [0, ..., K-1])."
        )
    if sorted(fold.choices or []) != list(range(folds)):
        raise UserError(
            f"The sweep config {spec.path}: {FOLD} must take the values 0 to {folds - 1} ({FOLDS}={folds}), each once,"
            f" so that each setting is validated on every fold; it lists {fold.choices}."
        )


@dataclass
class Setting:
    params: dict[str, Any]
    overrides: list[str]  # a member trial's fit overrides without the fold settings
    by_fold: dict[int, float] = field(default_factory=dict)
    trials: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.by_fold.values())

    @property
    def spread(self) -> float:
        return statistics.stdev(self.by_fold.values()) if len(self.by_fold) > 1 else 0.0


def settings(study: optuna.Study) -> list[Setting]:
    """The finished trials grouped by their parameters other than the fold, in the order they started."""
    grouped: dict[str, Setting] = {}
    for trial in study.trials:
        if trial.state != TrialState.COMPLETE or FOLD not in trial.params:
            continue
        params = {name: value for name, value in trial.params.items() if name != FOLD}
        key = json.dumps(params, sort_keys=True, default=str)
        overrides = [o for o in trial.user_attrs.get("overrides", []) if override_key(o) not in (FOLD, FOLDS)]
        setting = grouped.setdefault(key, Setting(params, overrides))
        setting.by_fold[int(trial.params[FOLD])] = trial.value
        setting.trials.append(trial.number)
    return list(grouped.values())


def best_setting(study: optuna.Study, spec: SweepSpec, sweep_dir: Path) -> tuple[dict[str, Any], str] | None:
    """Write folds.csv (each setting's mean and spread over the folds); return the best setting by its mean (what
    best.json holds) and the line that says it, or None while no setting has finished every fold."""
    folds = int(spec.fixed[FOLDS])
    found = settings(study)
    rows = [
        {**s.params, "folds done": len(s.by_fold), f"mean {spec.metric}": s.mean, "spread": s.spread}
        | {f"fold {i}": s.by_fold.get(i) for i in range(folds)}
        for s in found
    ]
    if rows:
        atomic_write_text(sweep_dir / "folds.csv", csv_text(rows, list(rows[0])))
    done = [s for s in found if len(s.by_fold) == folds]
    if not done:
        print(f"No setting has finished all {folds} folds yet: see the trials in {sweep_dir}.")
        return None
    best = (max if spec.goal == "maximize" else min)(done, key=lambda s: s.mean)
    result = {
        "folds": folds,
        spec.metric: best.mean,
        "spread": best.spread,
        "by_fold": {str(i): best.by_fold[i] for i in range(folds)},
        "params": best.params,
        "trials": best.trials,
        "command": fit_command_line(best.overrides),
    }
    params = " ".join(f"{k}={v}" for k, v in best.params.items())
    return result, f"Best over {folds} folds: {spec.metric} = {best.mean:.6g} ± {best.spread:.2g} (std) with {params}"
