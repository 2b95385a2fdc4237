"""The tables the commands print: ``fit``'s summary at the end of a run, and plain name/value tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def _table(title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    return table


def print_table(title: str, rows: dict[str, Any]) -> None:
    """A two-column table of names and values (numbers as ``fit``'s summary shows them)."""
    table = _table(title)
    for name, value in rows.items():
        table.add_row(name, _fmt(value))
    Console(stderr=False, soft_wrap=True).print(table)


def print_summary(summary: dict[str, Any]) -> None:
    table = _table("fit summary")
    table.add_row(f"best {summary['monitor']}", _fmt(summary["best_score"]))
    for name, value in summary["test"].items():
        table.add_row(name, _fmt(value))
    table.add_row("batch layout", summary["layout"])
    table.add_row("optimizer steps", _fmt(summary["global_steps"]))
    table.add_row("samples/s (fit, incl. validation)", _fmt(summary["samples_per_second"]))
    table.add_row("wall time", f"{summary['wall_seconds']:.1f} s")
    table.add_row("best checkpoint", _fmt(summary["best_checkpoint"]))
    table.add_row("last checkpoint", _fmt(summary["last_checkpoint"]))
    table.add_row("run directory", summary["run_dir"])
    Console(stderr=False, soft_wrap=True).print(table)
