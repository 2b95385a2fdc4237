"""Shared helpers: run the real `fit` command in a subprocess, compose configs, read run outputs."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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

import lightning.pytorch as L
import pytest
import torch
import yaml
from filelock import FileLock
from omegaconf import DictConfig, open_dict

from lightning_template.command_line.hydra_command import compose_fit
from lightning_template.runs.task_inference import inference_for
from lightning_template.runs.trained import TrainedModel, load_trained

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

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _default_task() -> str:
    """The task of the experiment ``fit`` runs by default (configs/fit.yaml)."""
    defaults = yaml.safe_load((CONFIG_DIR / "fit.yaml").read_text())["defaults"]
    return next(entry["experiment"] for entry in defaults if isinstance(entry, dict) and "experiment" in entry)


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


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def summary(self) -> dict:
        return json.loads((self.run_dir / "summary.json").read_text())

    def metrics(self) -> list[dict[str, str]]:
        (path,) = self.run_dir.rglob("metrics.csv")
        with path.open() as handle:
            return list(csv.DictReader(handle))

    def weights(self, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
        checkpoint = torch.load(self.run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)
        return checkpoint["state_dict"]


def run_module(
    module: str, *args: str, run_dir: Path, timeout: int = 600, check: bool = True, env: dict | None = None
) -> Completed:
    """Run ``python -m lightning_template.<module> args...`` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled", **(env or {})}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    command = [sys.executable, "-m", f"lightning_template.{module}", *args]
    if WARM.can_run(command[1:], env):
        proc = run_captured(WARM, command[1:], cwd=ROOT, env=env, timeout=timeout)
    else:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    done = Completed(proc.returncode, proc.stdout, proc.stderr, run_dir)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({proc.returncode}):\n{done.output[-6000:]}")
    return done


def run_command(command: str, run_dir: Path, *overrides: str, timeout: int = 600, check: bool = True) -> Completed:
    """Run the Hydra command ``command`` (fit, tune) with its run directory and overrides."""
    return run_module(command, f"hydra.run.dir={run_dir}", *overrides, run_dir=run_dir, timeout=timeout, check=check)


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
def fitted(shared_runs):
    """``fitted(task)``: one epoch of the task's tiny settings, fitted once per test session and shared by the
    tests of the commands that use a trained model (evaluate, predict, generate, export)."""

    def _fitted(task: str = TASK) -> Completed:
        return shared_runs.get("fit", *TINY_BY_TASK[task], "trainer.max_epochs=1")

    return _fitted


def console_script(command: str, *args: str, check: bool = True, timeout: int = 600) -> Completed:
    """Run an installed console script (``evaluate``, ``predict``, ...) as a user would; ``run_dir`` is unused."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled"}
    script = Path(sys.executable).with_name(command)
    proc = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    done = Completed(proc.returncode, proc.stdout, proc.stderr, ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{command} {' '.join(args)} failed ({proc.returncode}):\n{done.output[-6000:]}")
    return done


def expect_user_error(run: Completed, *fragments: str, status: int | None = 2) -> None:
    """A failure (exit ``status``; None: any) explained in one paragraph naming ``fragments``, no traceback."""
    assert run.returncode == status if status is not None else run.returncode != 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    for fragment in fragments:
        assert fragment in " ".join(run.stderr.split()), run.stderr[-3000:]


# Loads an exported model and runs it on saved inputs in a fresh interpreter that never imports the project.
_RUN_EXPORTED = """
import sys, torch
model_path, inputs_path, outputs_path = sys.argv[1:]
inputs = torch.load(inputs_path, weights_only=True)
if model_path.endswith(".onnx"):
    import onnxruntime
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feed = {entry.name: tensor.numpy() for entry, tensor in zip(session.get_inputs(), inputs)}
    outputs = [torch.from_numpy(output) for output in session.run(None, feed)]
else:
    model = torch.export.load(model_path).module() if model_path.endswith(".pt2") else torch.jit.load(model_path)
    outputs = model(*inputs)
assert not any(name.split(".")[0] == "lightning_template" for name in sys.modules), "the project was imported"
torch.save(list(outputs) if isinstance(outputs, (tuple, list)) else [outputs], outputs_path)
"""


def run_exported(model_path: Path, inputs: tuple[torch.Tensor, ...], work: Path) -> list[torch.Tensor]:
    """The outputs of an exported model on ``inputs``, computed in a fresh process outside the project."""
    torch.save(list(inputs), work / "inputs.pt")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, "-c", _RUN_EXPORTED, str(model_path), str(work / "inputs.pt"), str(work / "out.pt")]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(work / "out.pt", weights_only=True)


def trained_model(
    checkpoint: Path, task: str = TASK, overrides: list[str] | None = None
) -> tuple[TrainedModel, DictConfig]:
    """The model of a checkpoint fitted with ``task``'s tiny settings (or ``overrides``), loaded here; its config."""
    cfg = compose_fit(overrides or TINY_BY_TASK[task])
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint)
    return load_trained(cfg), cfg


def exported_round_trip(run, task: str, fmt: str, work, overrides: list[str] | None = None) -> float:
    """Export ``run``'s last checkpoint as ``fmt``; the largest difference between the reloaded file's outputs
    and the checkpoint's model's on the export's example inputs (computed here, through the project)."""
    checkpoint = run.run_dir / "checkpoints" / "last.ckpt"
    console_script("export", f"ckpt_path={checkpoint}", f"format={fmt}", f"output_dir={work}")
    metadata = json.loads((work / "model.json").read_text())
    spec = inference_for(*trained_model(checkpoint, task, overrides)).export_spec()
    with torch.no_grad():
        expected = spec.module.eval()(*spec.example_inputs)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    outputs = run_exported(work / metadata["file"], spec.example_inputs, work)
    assert [o.shape for o in outputs] == [e.shape for e in expected]
    return max((o.double() - e.double()).abs().max().item() for o, e in zip(outputs, expected, strict=True))


def quiet_trainer(**settings) -> L.Trainer:
    """A CPU Trainer without logger, progress bar or model summary, for in-process module tests."""
    quiet = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    return L.Trainer(**{**quiet, **settings})


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


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
