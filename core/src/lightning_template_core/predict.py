"""The ``predict`` command: a trained classifier's classes for files, written to ``predictions.csv``.

predict ckpt_path=<run dir>/checkpoints/last.ckpt input=<file or folder>
predict ckpt_path=<file> input=<folder> top_k=5 output=<file.csv>

What a file may hold, and how it becomes a model input, is the model's task's
(``tasks/<task>/inference.py``); this command batches the inputs, writes one row per
input and lists every file it could not read instead of dropping it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import track
from rich.table import Table
from torch import Tensor

from lightning_template_core._command_line.hydra_command import hydra_command
from lightning_template_core._errors import UserError, print_paragraph
from lightning_template_core._files.atomic import atomic_write_text, csv_text
from lightning_template_core._runs.task_inference import TaskInference, inference_for
from lightning_template_core._runs.trained import load_trained, with_run_overrides
from lightning_template_core._stop_before_training import install as install_stop_handlers

COLUMNS = ("input", "class", "probability", "top_k")
SHOWN = 10  # rows of the printed table


def _inputs(hooks: TaskInference, files: list[Path], unreadable: dict[str, str]) -> Iterator[tuple[str, Tensor]]:
    """Every input of every file, in order; a file that cannot be read goes to ``unreadable`` with the reason."""
    for path in track(files, description="predict", disable=len(files) < 20, transient=True):
        try:
            yield from hooks.read_input(path)
        except Exception as err:  # readers raise many types for a bad file; each is reported, none ends the run
            unreadable[str(path)] = f"{type(err).__name__}: {str(err)[:200]}"


def _batches(items: Iterator[tuple[str, Tensor]], size: int) -> Iterator[tuple[list[str], Tensor]]:
    names, tensors = [], []
    for name, tensor in items:
        names.append(name)
        tensors.append(tensor)
        if len(names) == size:
            yield names, torch.stack(tensors)
            names, tensors = [], []
    if names:
        yield names, torch.stack(tensors)


def _rows(hooks: TaskInference, names: list[str], probabilities: Tensor, top_k: int) -> list[dict[str, Any]]:
    classes = hooks.description.classes
    top = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    return [
        {
            "input": name,
            "class": classes[int(indices[0])],
            "probability": float(values[0]),
            "top_k": "; ".join(f"{classes[int(i)]} {float(v):.4f}" for v, i in zip(values, indices, strict=True)),
        }
        for name, values, indices in zip(names, top.values, top.indices, strict=True)
    ]


def _show(rows: list[dict[str, Any]], unreadable: dict[str, str], output: Path, folder: Path) -> None:
    """The first rows, inputs named within ``folder`` (the CSV keeps whole paths)."""
    title = f"predict: {len(rows)} input(s) of {folder}, written to {output}"
    table = Table(title=title, title_justify="left")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows[:SHOWN]:
        name = row["input"].removeprefix(f"{folder}{os.sep}")
        table.add_row(name, row["class"], f"{row['probability']:.4f}", row["top_k"])
    if len(rows) > SHOWN:
        table.add_row(f"... {len(rows) - SHOWN} more", "", "", "")
    Console(soft_wrap=True).print(table)
    if unreadable:
        listed = "; ".join(f"{path} ({reason})" for path, reason in unreadable.items())
        print_paragraph("Skipped", f"{len(unreadable)} unreadable input(s), not in {output.name}: {listed}")


def run_predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Classify every input of ``cfg.input`` with ``cfg.ckpt_path``; write and print the predictions."""
    if not cfg.get("input"):
        raise UserError("input is not set: give a file or a folder of files to classify, e.g. input=photos/.")
    path = Path(str(cfg.input)).expanduser()
    if not path.exists():
        raise UserError(f"input={path} does not exist: give a file or a folder of files to classify.")
    hooks = inference_for(load_trained(cfg), cfg)
    files = hooks.input_files(path)
    if not files:
        raise UserError(f"input={path} holds no files to classify (hidden files are left out).")
    unreadable: dict[str, str] = {}
    rows = []
    for names, batch in _batches(_inputs(hooks, files, unreadable), int(cfg.batch_size)):
        rows += _rows(hooks, names, hooks.class_probabilities(batch), int(cfg.top_k))
    if not rows:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in unreadable.items())
        raise UserError(f"No input of input={path} could be read ({reasons}). {hooks.input_help()}")
    output = Path(str(cfg.output))
    atomic_write_text(output, csv_text(rows, COLUMNS))
    _show(rows, unreadable, output, path if path.is_dir() else path.parent)
    return rows


main = hydra_command("predict", with_run_overrides)(run_predict)

if __name__ == "__main__":
    install_stop_handlers()  # as the console script does, once this module is imported
    main()
