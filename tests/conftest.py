"""Shared helpers: run the real `fit` command in a subprocess, compose configs, read run outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def _share_the_cores_between_workers() -> None:
    """One intra-op thread pool per core, not per worker: with torch's default (a thread per core in
    every process), two workers on two cores run four threads whose small ops spin-wait on each
    other; the suite took a third longer. Set before torch is imported here and in the warm
    interpreter; a user's OMP_NUM_THREADS wins, and DDP ranks get Lightning's own share."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // int(workers)))


_share_the_cores_between_workers()

import pytest
import yaml

import lightning_template_core.testing.runs as kit_runs
from lightning_template_core.testing import (  # noqa: F401  (re-exported to the core tests)
    Completed,
    console_script,
    expect_user_error,
    max_abs_difference,
    run_command,
    run_module,
    set_command_runner,
)
from lightning_template_core.testing.runs import QUIET, quiet_trainer  # noqa: F401

from warm_interpreter import WarmInterpreter, run_captured

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"

# W&B's sweep-config code (and the scipy it imports) is installed beside the venv, not in it (see the
# Makefile), so that the `fit` processes the tests start import what a user's do; the tests' own
# processes reach it here.
SWEEPS_VALIDATOR = Path(sys.prefix) / "sweeps-validator"
sys.path.append(str(SWEEPS_VALIDATOR))

# Where the command processes start (tests/warm_interpreter.py): torch and Lightning imported once per worker.
WARM = WarmInterpreter()


def _default_task() -> str:
    """The task of the experiment ``fit`` runs by default (configs/project/default.yaml)."""
    defaults = yaml.safe_load((CONFIG_DIR / "project" / "default.yaml").read_text())["defaults"]
    return next(entry["override /experiment"] for entry in defaults if "override /experiment" in entry)


# Each task's small, fast settings (tests/tasks/<task>/tiny.yaml: `overrides`), for runs whose
# point is the mechanics, not the accuracy, and what makes its validation take several
# seconds (`long_validation`). What a core test needs of a task comes from there or from
# the task's configs, never from one task's numbers.
TINY_FILES = {
    path.parent.name: yaml.safe_load(path.read_text())
    for path in sorted((ROOT / "tests" / "tasks").glob("*/tiny.yaml"))
}
TINY_BY_TASK = {task: [*spec["overrides"], *QUIET] for task, spec in TINY_FILES.items()}
LONG_VALIDATION_BY_TASK = {task: spec["long_validation"] for task, spec in TINY_FILES.items()}


def _core_task() -> str:
    """The task the core's tests (fit, tune, sweep, resume, the commands) run on: the default
    experiment's, or ``TEST_TASK=<task>`` (the core's tests hold for every task; a project
    baked with one task runs them on it)."""
    chosen = os.environ.get("TEST_TASK") or _default_task()
    if chosen not in TINY_BY_TASK:
        raise pytest.UsageError(f"TEST_TASK={chosen}: give one of {', '.join(TINY_BY_TASK)}")
    return chosen


DEFAULT_TASK = _default_task()
TASK = _core_task()
TINY = TINY_BY_TASK[TASK]
# The core task and a second one (the last task by name that is not it, where the project has one):
# the core tests that read a task's shape (steps per epoch, validations, task-only keys) run on both,
# so a core test that assumes one task's numbers fails here, not in a project baked with another task.
SHAPE_TASKS = [TASK, *sorted(set(TINY_BY_TASK) - {TASK})[-1:]]


def _run_warm(argv: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    """The kit's commands in this worker's warm interpreter where it can run them, else in a fresh one."""
    if WARM.can_run(argv, env):
        return run_captured(WARM, argv, cwd=ROOT, env=env, timeout=timeout)
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


set_command_runner(_run_warm)


def trained_model(checkpoint: Path, task: str = TASK, overrides: list[str] | None = None):
    """The model of a checkpoint fitted with ``task``'s tiny settings (or ``overrides``), loaded here; its config."""
    return kit_runs.trained_model(checkpoint, overrides or TINY_BY_TASK[task])


def exported_round_trip(run: Completed, task: str, fmt: str, work: Path, overrides: list[str] | None = None) -> float:
    return kit_runs.exported_round_trip(run, fmt, work, overrides or TINY_BY_TASK[task])


@pytest.fixture(scope="session")
def default_task() -> str:
    """``fitted()`` fits the core task."""
    return TASK


@pytest.fixture(autouse=True)
def _environment_as_it_was() -> Iterator[None]:
    """Each test leaves ``os.environ`` as it found it. A run built in this process sets Lightning's
    PL_GLOBAL_SEED; an environment changed after the warm interpreter started makes every later command
    of the worker start an interpreter of its own (warm_interpreter.py), about 4 s each."""
    before = dict(os.environ)
    yield
    if os.environ != before:
        os.environ.clear()
        os.environ.update(before)


# Longest first. With tests spread over workers, a long test started last keeps one worker busy
# after the others are done; started first, the short ones fill in around it. Each test's seconds
# come from tests/durations.txt (`make durations` rewrites it from a full run); a test not listed
# there is guessed from its markers.
DURATIONS = ROOT / "tests" / "durations.txt"
GUESSED_SECONDS = {"bake": 300.0, "slow": 60.0}


def read_durations(path: Path = DURATIONS) -> dict[str, float]:
    if not path.is_file():
        return {}
    lines = (line.split(" ", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {node.strip(): float(seconds) for seconds, node in lines}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-durations", action="store_true", help=f"write each test's seconds to {DURATIONS}")


# A test that starts a command in a process of its own (a Python interpreter importing torch and
# Lightning, several seconds) belongs to the full suite, `make test`, not to `make test-fast`; the
# smoke tests (one fast_dev_run per task) stay in both.
PROCESS_FIXTURES = {"fit", "fitted", "shared_runs", "next_word_run"}
PROCESS_HELPERS = {"console_script", "run_module", "run_command", "exported_round_trip", "tune_then_fit", "_evaluated"}


def starts_a_process(item: pytest.Item) -> bool:
    code = getattr(getattr(item, "function", None), "__code__", None)
    names = set(code.co_names) if code else set()
    return bool(PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) or PROCESS_HELPERS & names)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if starts_a_process(item) and not item.get_closest_marker("smoke"):
            item.add_marker(pytest.mark.slow)
    known = read_durations()

    def seconds(item: pytest.Item) -> float:
        if item.nodeid in known:
            return known[item.nodeid]
        return max((s for marker, s in GUESSED_SECONDS.items() if item.get_closest_marker(marker)), default=1.0)

    items.sort(key=seconds, reverse=True)  # stable: equal costs keep their order


class DurationRecorder:
    """Each test's set-up, call and tear-down seconds, merged into the durations file at the end.

    Registered on the controller only: under xdist it receives every worker's reports. A run
    of the whole suite also drops the lines of tests that no longer exist.
    """

    def __init__(self, path: Path, whole_suite: bool) -> None:
        self.path, self.whole_suite, self.seconds, self.collected = path, whole_suite, {}, set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected.update(item.nodeid for item in session.items)

    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.collected.update(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        known = read_durations(self.path)
        if self.whole_suite and self.collected:
            known = {node: seconds for node, seconds in known.items() if node in self.collected}
        durations = {**known, **self.seconds}
        ordered = sorted(durations.items(), key=lambda item: (-item[1], item[0]))
        header = "# seconds per test (set-up, call, tear-down) on a 2-core machine, longest first: `make durations`"
        self.path.write_text("\n".join([header, *(f"{seconds:.1f} {node}" for node, seconds in ordered)]) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("record_durations") and not hasattr(config, "workerinput"):
        filtered = config.option.keyword or config.option.markexpr
        whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS and not filtered
        config.pluginmanager.register(DurationRecorder(DURATIONS, whole_suite), "duration-recorder")
