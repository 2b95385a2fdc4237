"""What a sweep leaves behind: a table of its trials, the best one, and a plot."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from lightning_template_core._files.atomic import atomic_write_text, csv_text
from lightning_template_core.sweep.kfold import best_setting, is_kfold
from lightning_template_core.sweep.liveness import RETRY_OF
from lightning_template_core.sweep.spec import SweepSpec, fit_command_line
from lightning_template_core.sweep.trial_process import lr_used as trial_lr_used


def lr_used(trial: FrozenTrial) -> float | None:
    """The learning rate the trial trained with (after ``lr_scaling``): recorded in the study when the trial
    ended, else (a trial still running, or from before that was recorded) read from its run directory."""
    if "lr_used" in trial.user_attrs:
        return trial.user_attrs["lr_used"]
    run_dir = trial.user_attrs.get("run_dir")
    return trial_lr_used(Path(run_dir)) if run_dir else None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _result(trial: FrozenTrial) -> float | None:
    """The trial's objective, or for a pruned trial its last reported value."""
    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def rows(study: optuna.Study, spec: SweepSpec) -> list[dict[str, Any]]:
    names = [p.name for p in spec.searched]
    table = []
    retries = any(RETRY_OF in t.user_attrs for t in study.trials)
    for trial in study.trials:
        duration = trial.duration.total_seconds() if trial.duration else None
        row = {"trial": trial.number, "state": trial.state.name.lower(), spec.metric: _result(trial)}
        if retries:
            row["continues"] = trial.user_attrs.get(RETRY_OF)
        row.update({name: trial.params.get(name) for name in names})
        row.update({"lr used": lr_used(trial), "validations": len(trial.intermediate_values), "seconds": duration})
        table.append(row)
    return table


def write_report(study: optuna.Study, spec: SweepSpec, sweep_dir: Path) -> dict[str, Any] | None:
    """Print the table and the best trial (of a k-fold sweep: the best setting over the folds); write
    trials.csv, best.json and sweep.png. Returns the best."""
    table_rows = rows(study, spec)
    if table_rows:
        atomic_write_text(sweep_dir / "trials.csv", csv_text(table_rows, list(table_rows[0])))
        _print_table(table_rows, f"sweep {spec.name}: {len(table_rows)} trial(s) ({spec.goal} {spec.metric})")
        plot(study, spec, sweep_dir / "sweep.png")
    chosen = best_setting(study, spec, sweep_dir) if is_kfold(spec) else _best_trial(study, spec, sweep_dir)
    if chosen is None:
        return None
    best, headline = chosen
    atomic_write_text(sweep_dir / "best.json", json.dumps(best, indent=2) + "\n")
    print(headline)
    print(f"Train it: {best['command']}")
    written = ["trials.csv", *(["folds.csv"] if is_kfold(spec) else []), "best.json", "sweep.png"]
    print(f"Wrote {', '.join(str(sweep_dir / name) for name in written)}")
    return best


def _best_trial(study: optuna.Study, spec: SweepSpec, sweep_dir: Path) -> tuple[dict[str, Any], str] | None:
    """The best trial (what best.json holds) and the line that says it; None if no trial completed."""
    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        print(f"No trial completed: see the fit.log of each trial in {sweep_dir}.")
        return None
    trial = study.best_trial
    best = {
        "trial": trial.number,
        spec.metric: trial.value,
        "params": trial.params,
        "run_dir": trial.user_attrs.get("run_dir"),
        "command": fit_command_line(trial.user_attrs.get("overrides", [])),
    }
    params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    return best, f"Best trial {trial.number}: {spec.metric} = {trial.value:.6g} with {params}"


def _print_table(table_rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in table_rows[0]:
        table.add_column(column, justify="left" if column == "state" else "right")
    for row in table_rows:
        table.add_row(*(_fmt(value) for value in row.values()))
    # wide enough for full parameter names also when the output is not a terminal
    Console(soft_wrap=True, width=max(shutil.get_terminal_size().columns, 160)).print(table)


def _axes_parameters(spec: SweepSpec) -> tuple[str | None, str | None]:
    """The x axis (a log-scale parameter such as the LR, else the first numeric one) and the colour."""
    numeric = [p for p in spec.searched if p.numeric]
    x = next((p for p in numeric if p.log), None) or next((p for p in numeric if p.low is not None), None)
    x = x or (numeric[0] if numeric else None)
    colour = next((p for p in spec.searched if p.choices and p is not x), None)
    return (x.name if x else None), (colour.name if colour else None)


def _order(value: Any) -> tuple[bool, Any]:
    """Numbers in numeric order, then anything else as text."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (not number, value if number else str(value))


def plot(study: optuna.Study, spec: SweepSpec, png: Path) -> None:
    """Objective against the x parameter coloured by the colour parameter, and the optimisation history."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed: the sweep may run on a server
    import matplotlib.pyplot as plt

    figure, (by_parameter, history) = plt.subplots(1, 2, figsize=(12, 4.5))
    _plot_by_parameter(by_parameter, study, spec)
    _plot_history(history, study, spec)
    figure.tight_layout()
    figure.savefig(png, dpi=110)
    plt.close(figure)


def _plot_by_parameter(axes: Any, study: optuna.Study, spec: SweepSpec) -> None:
    """Each trial's result at its x parameter, a colour per value of the colour parameter."""
    x_name, colour_name = _axes_parameters(spec)
    if not x_name:
        return
    trials = [t for t in study.trials if _result(t) is not None]
    groups = sorted({t.params.get(colour_name) for t in trials}, key=_order) if colour_name else [None]
    for index, group in enumerate(groups):
        members = [
            t for t in trials if x_name in t.params and (colour_name is None or t.params.get(colour_name) == group)
        ]
        _scatter_group(axes, members, x_name, f"C{index}", f"{colour_name}={group}" if colour_name else None)
    _label_by_parameter(axes, spec, x_name, colour_name)


def _scatter_group(axes: Any, members: list[FrozenTrial], x_name: str, colour: str, label: str | None) -> None:
    """One colour's trials: completed ones as dots, pruned ones (at their last reported value) as crosses."""
    pruned_label = f"{label} (pruned)" if label else "pruned"
    for state, marker, alpha, state_label in (
        (TrialState.COMPLETE, "o", 1.0, label),
        (TrialState.PRUNED, "x", 0.7, pruned_label),
    ):
        chosen = [t for t in members if t.state == state]
        if chosen:
            x, y = [t.params[x_name] for t in chosen], [_result(t) for t in chosen]
            axes.scatter(x, y, marker=marker, color=colour, label=state_label, alpha=alpha)


def _label_by_parameter(axes: Any, spec: SweepSpec, x_name: str, colour_name: str | None) -> None:
    """Axis labels and title; a log x axis for a log-uniform parameter; a legend when groups are named."""
    if any(p.name == x_name and p.log for p in spec.searched):
        axes.set_xscale("log")
    axes.set_xlabel(x_name)
    axes.set_ylabel(spec.metric)
    axes.set_title(f"{spec.metric} by {x_name}" + (f", coloured by {colour_name}" if colour_name else ""))
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="best")


def _plot_history(axes: Any, study: optuna.Study, spec: SweepSpec) -> None:
    """Each completed trial's objective by trial number, and the best one so far."""
    from matplotlib.ticker import MaxNLocator

    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if completed:
        numbers, values = [t.number for t in completed], [t.value for t in completed]
        best = max if spec.goal == "maximize" else min
        axes.plot(numbers, values, "o", label="trial")
        axes.step(numbers, list(itertools.accumulate(values, best)), where="post", label="best so far")
        axes.legend(fontsize=8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("trial")
    axes.set_ylabel(spec.metric)
    axes.set_title("optimisation history")
