"""The test kit's pytest fixtures: ``fit`` (a run of one's own) and ``fitted`` (a run shared by a session's tests).

A project enables it in its pytest settings (``addopts = "-p lightning_template_core.testing.plugin"``).
A task's tiny settings are ``tests/tasks/<task>/tiny.yaml`` under pytest's root folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from lightning_template_core.testing.commands import Completed, run_command
from lightning_template_core.testing.runs import tiny_overrides


@pytest.fixture
def fit(tmp_path: Path):
    """``fit(*overrides, name=..., check=True)`` runs the fit command in its own run directory."""

    def _fit(*overrides: str, name: str = "run", check: bool = True, timeout: int = 600) -> Completed:
        return run_command("fit", tmp_path / name, *overrides, check=check, timeout=timeout)

    return _fit


class SharedRuns:
    """Runs that several tests read, made once per test session however many xdist workers ask.

    A run is keyed by its command and overrides; the first worker to ask makes it under a
    file lock while the others wait, then all read the same directory. A test must not
    write into a shared run: one that continues or evaluates it works on :meth:`copy`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, command: str, *overrides: str) -> Completed:
        key = hashlib.sha256(json.dumps([command, overrides]).encode()).hexdigest()[:16]
        folder, record = self.root / key, self.root / key / "completed.json"
        with FileLock(self.root / f"{key}.lock"):
            if not record.is_file():
                shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
                done = run_command(command, folder / "run", *overrides)
                record.write_text(json.dumps([done.returncode, done.stdout, done.stderr]))
        returncode, stdout, stderr = json.loads(record.read_text())
        return Completed(returncode, stdout, stderr, folder / "run")

    @staticmethod
    def copy(run: Completed, destination: Path) -> Completed:
        """A copy of ``run`` at ``destination``, for a test that writes into it (its summary names the original)."""
        shutil.copytree(run.run_dir, destination)
        return Completed(run.returncode, run.stdout, run.stderr, destination)


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory) -> SharedRuns:
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker has its own base temp, in one folder of the session
    return SharedRuns((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-runs")


@pytest.fixture(scope="session")
def default_task() -> str | None:
    """The task the project's tests use where they name none (a project overrides this fixture)."""
    return None


@pytest.fixture(scope="session")
def fitted(shared_runs, pytestconfig, default_task):
    """``fitted(task)``: one epoch of the task's tiny settings, fitted once per test session and shared by the
    tests of the commands that use a trained model (evaluate, predict, generate, export)."""

    def _fitted(task: str | None = None) -> Completed:
        task = task or default_task
        tiny = pytestconfig.rootpath / "tests" / "tasks" / str(task) / "tiny.yaml"
        if not tiny.is_file():
            raise pytest.UsageError(f"fitted({task!r}): no {tiny}")
        return shared_runs.get("fit", *tiny_overrides(tiny), "trainer.max_epochs=1")

    return _fitted
