"""The console scripts: stop signals handled from the process's first moment, then the command imported and run."""

from __future__ import annotations

import importlib
from typing import Any

from lightning_template_core import _stop_before_training


def _run(module: str, stop_handlers: bool = True) -> Any:
    if stop_handlers:  # before torch and Lightning are imported (seconds)
        _stop_before_training.install()
    return importlib.import_module(f"lightning_template_core.{module}").main()


def fit() -> Any:
    return _run("fit")


def tune() -> Any:
    return _run("tune")


def sweep() -> Any:
    return _run("sweep.cli", stop_handlers=False)  # its trials are fit processes; it handles its own signals


def evaluate() -> Any:
    return _run("evaluate")


def predict() -> Any:
    return _run("predict")


def generate() -> Any:
    return _run("generate")


def export() -> Any:
    return _run("export")


def verify() -> Any:
    return _run("verify", stop_handlers=False)  # its runs are fit processes of their own
