"""What a sweep leaves behind: a table of its trials, the best one, and a plot."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from lightning_template.lr_scaling import scaled_lr
from lightning_template.sweep.spec import SweepSpec, fit_command_line


def lr_used(trial: FrozenTrial) -> float | None:
    """The learning rate the trial trained with (after ``lr_scaling``), from its resolved config."""
    path = Path(trial.user_attrs.get("run_dir", "")) / "config.yaml"
    if not path.is_file():
        return None
    cfg = yaml.safe_load(path.read_text())
    lr = (cfg.get("model") or {}).get("optimizer", {}).get("lr")
    if lr is None:
        return None
    return scaled_lr(lr, cfg["data"]["global_batch_size"], cfg.get("lr_reference_batch_size"), cfg.get("lr_scaling"))


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
    for trial in study.trials:
        duration = trial.duration.total_seconds() if trial.duration else None
        row = {"trial": trial.number, "state": trial.state.name.lower(), spec.metric: _result(trial)}
        row.update({name: trial.params.get(name) for name in names})
        row.update({"lr used": lr_used(trial), "validations": len(trial.intermediate_values), "seconds": duration})
        table.append(row)
    return table


def write_report(study: optuna.Study, spec: SweepSpec, sweep_dir: Path) -> dict[str, Any] | None:
    """Print the table and the best trial; write trials.csv, best.json and sweep.png. Returns the best."""
    table_rows = rows(study, spec)
    if table_rows:
        with (sweep_dir / "trials.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table_rows[0]))
            writer.writeheader()
            writer.writerows(table_rows)
        _print_table(table_rows, f"sweep {spec.name}: {len(table_rows)} trial(s) ({spec.goal} {spec.metric})")
        plot(study, spec, sweep_dir / "sweep.png")
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not completed:
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
    (sweep_dir / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    print(f"Best trial {trial.number}: {spec.metric} = {trial.value:.6g} with {params}")
    print(f"Train it: {best['command']}")
    print(f"Wrote {sweep_dir / 'trials.csv'}, {sweep_dir / 'best.json'} and {sweep_dir / 'sweep.png'}")
    return best


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

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x_name, colour_name = _axes_parameters(spec)
    figure, (scatter, history) = plt.subplots(1, 2, figsize=(12, 4.5))
    trials = [t for t in study.trials if _result(t) is not None]
    if x_name:
        groups = sorted({t.params.get(colour_name) for t in trials}, key=_order) if colour_name else [None]
        for index, group in enumerate(groups):
            members = [t for t in trials if colour_name is None or t.params.get(colour_name) == group]
            for state, marker, fill in ((TrialState.COMPLETE, "o", True), (TrialState.PRUNED, "x", False)):
                chosen = [t for t in members if t.state == state and x_name in t.params]
                if not chosen:
                    continue
                label = f"{colour_name}={group}" if colour_name else None
                label = label if state == TrialState.COMPLETE else (f"{label} (pruned)" if label else "pruned")
                scatter.scatter(
                    [t.params[x_name] for t in chosen],
                    [_result(t) for t in chosen],
                    marker=marker,
                    color=f"C{index}",
                    label=label,
                    alpha=1.0 if fill else 0.7,
                )
        if next((p for p in spec.searched if p.name == x_name and p.log), None):
            scatter.set_xscale("log")
        scatter.set_xlabel(x_name)
        scatter.set_ylabel(spec.metric)
        scatter.set_title(f"{spec.metric} by {x_name}" + (f", coloured by {colour_name}" if colour_name else ""))
        if scatter.get_legend_handles_labels()[0]:
            scatter.legend(fontsize=7, loc="best")
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if completed:
        best = max if spec.goal == "maximize" else min
        running, best_so_far = [], None
        for t in completed:
            best_so_far = t.value if best_so_far is None else best(best_so_far, t.value)
            running.append(best_so_far)
        history.plot([t.number for t in completed], [t.value for t in completed], "o", label="trial")
        history.step([t.number for t in completed], running, where="post", label="best so far")
        history.legend(fontsize=8)
    history.xaxis.set_major_locator(MaxNLocator(integer=True))
    history.set_xlabel("trial")
    history.set_ylabel(spec.metric)
    history.set_title("optimisation history")
    figure.tight_layout()
    figure.savefig(png, dpi=110)
    plt.close(figure)
