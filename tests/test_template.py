"""Baking new projects with cookiecutter (through pytest-cookies), and testing what comes out.

Each bake is checked for its layout and for leftovers (template machinery, this
repository's names, the words of the tasks not chosen); the baked projects' own test suites
then run in a virtual environment of their own, with the package installed under its new name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from conftest import DEFAULT_TASK, ROOT, SWEEPS_VALIDATOR

sys.path.insert(0, str(ROOT / "template"))
from bake import (
    LEFTOVERS,
    LOGGERS,
    PACKAGE,
    TASKS,
    Options,
    check_no_task_words,
    keep_blocks,
    owner,
    owns,
    source_files,
    task_words,
)

pytestmark = pytest.mark.bake

NAME = {"project_name": "Acme Vision"}
BAKES = {
    "default": {},
    "cnn": {"tasks": "cnn", "default_logger": "tensorboard"},
    "lm": {"tasks": "lm", "python_versions": "3.11,3.12"},
    "video": {"tasks": "video", "default_logger": "wandb", "author": "Ada Lovelace"},
    "sentences": {"tasks": "sentences"},
    "lm-mlflow": {"tasks": "lm", "default_logger": "mlflow"},  # bake checks only (SUITES: one per task)
}
# What tells each task: none of it may remain once the task is left out.
WORDS = task_words(ROOT)


def bake(cookies, **answers) -> Path:
    result = cookies.bake(extra_context={**NAME, **answers}, template=str(ROOT / "template"))
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


def baked_text(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): p.read_text() for p in sorted(project.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("bake_name", list(BAKES))
def test_bake_keeps_the_chosen_tasks_renamed_and_nothing_else(cookies, bake_name):
    answers = BAKES[bake_name]
    project = bake(cookies, **answers)
    tasks = answers.get("tasks", ",".join(TASKS)).split(",")
    assert project.name == "acme-vision"
    assert (project / "src" / "acme_vision" / "fit.py").is_file() and not (
        project / "src" / "lightning_template"
    ).exists()
    assert not (project / "template").exists() and not (project / "tests" / "test_template.py").exists()
    experiments = {p.stem for p in (project / "configs" / "experiment").glob("*.yaml")}
    assert experiments and {e.split("_")[0] for e in experiments} == set(tasks)
    assert {p.stem.split("_")[0] for p in (project / "configs" / "sweep").glob("*.yaml")} == set(tasks)

    files = baked_text(project)
    for path, text in files.items():
        assert not LEFTOVERS.search(text), f"{path}: {LEFTOVERS.search(text).group(0)!r}"
        assert "template" not in text.lower(), f"{path} mentions the template"
        for task in set(TASKS) - set(tasks):
            found = WORDS[task].search(path + "\n" + text)
            assert not found, f"{path} keeps {found.group(0)!r} of the left-out task {task}"

    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["name"] == "acme-vision"
    assert pyproject["project"]["scripts"]["fit"] == "acme_vision.fit:main"
    assert pyproject["project"]["authors"] == [{"name": answers.get("author", "Your Name")}]
    versions = answers.get("python_versions", "3.10,3.11,3.12,3.13").split(",")
    assert pyproject["project"]["requires-python"] == f">={versions[0]}"
    workflow = yaml.safe_load(files[".github/workflows/ci.yml"])
    assert workflow["jobs"]["test"]["strategy"]["matrix"]["python"] == versions
    assert [s["suite"] for s in workflow["jobs"]["suite"]["strategy"]["matrix"]["include"]] == [
        "smoke",
        "ddp-cpu",
        "slow",
    ]

    fit_defaults = yaml.safe_load(files["configs/fit.yaml"])["defaults"]
    logger = answers.get("default_logger", "csv")
    assert {"experiment": tasks[0]} in fit_defaults
    assert {"logger": "csv" if logger == "csv" else ["csv", logger]} in fit_defaults
    assert files["README.md"].startswith("# Acme Vision\n")
    required = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in pyproject["project"]["dependencies"]}
    assert required & set(LOGGERS) == {logger} - {"csv"}  # the default tracker's package, no other


def test_markers_keep_the_blocks_of_chosen_tasks():
    text = "a\n# >>> cnn video\nb\n# >>> lm\nc\n# <<< lm\n# <<< cnn video\n"
    text += "<!-- >>> template -->\nd\n<!-- <<< template -->\n"
    assert keep_blocks(text, ("cnn",), "x") == "a\nb\n"
    assert keep_blocks(text, ("lm",), "x") == "a\n"
    with pytest.raises(ValueError, match="never closed"):
        keep_blocks("# >>> cnn\na\n", ("cnn",), "x")


def test_each_task_is_found_by_convention_and_registered():
    files = source_files(ROOT)
    for task in TASKS:
        owned = {f.as_posix() for f in files if owner(f) == task}
        for expected in (
            f"src/{PACKAGE}/tasks/{task}/__init__.py",
            f"tests/tasks/{task}/tiny.yaml",
            f"configs/experiment/{task}.yaml",
            f"configs/sweep/{task}.yaml",
        ):
            assert expected in owned, f"{task}: {expected} is missing"
        for group in ("data", "model"):  # a model config per objective where a task has several
            assert any(f.startswith(f"configs/{group}/{task}") for f in owned), f"{task}: no configs/{group}/{task}*"
        assert any(f.startswith(f"tests/tasks/{task}/test_") for f in owned), f"{task}: no tests"
    default_tasks = json.loads((ROOT / "template" / "cookiecutter.json").read_text())["tasks"]
    assert default_tasks == ",".join(TASKS)


def test_a_file_belongs_to_one_task_at_most():
    for path in source_files(ROOT):
        owners = [task for task in TASKS if owns(task, path)]
        assert len(owners) <= 1, f"{path} belongs to {owners}"
    assert owner(Path("tests/test_template.py")) == owner(Path("template/hooks/pre_gen_project.py")) == "template"
    assert owner(Path("configs/data/_base.yaml")) is owner(Path(f"src/{PACKAGE}/tasks/__init__.py")) is None
    assert owner(Path("scripts/lm_speed.py")) == owner(Path("docs/tasks/lm.md")) == "lm"


def test_task_words_are_whole_words_of_one_task():
    assert WORDS["lm"].search("experiment=lm_ptb") and WORDS["lm"].search("truncated BPTT")
    assert not WORDS["lm"].search("experiment=sentences_lm")  # a compound named for another task is its own
    assert not WORDS["lm"].search("a film of helms") and not WORDS["video"].search("videography")
    assert WORDS["cnn"].search("CIFAR-10") and WORDS["cnn"].search("cifar10")
    assert WORDS["video"].search("VideoClassifier") and not WORDS["video"].search("videoclassifier")
    for task, word in WORDS.items():
        assert word.search(f"tasks/{task}/x.py"), task
        assert not any(word.search(other) for other in TASKS if other != task), task


def test_a_bake_that_keeps_a_left_out_task_word_is_refused_naming_file_line_and_word(tmp_path):
    (tmp_path / "notes.md").write_text("video_lab: our project\nsee experiment=video_folder\n")
    options = Options("Video Lab", "video-lab", "video_lab", "d", "A", ("lm",), "csv", ("3.12",))
    with pytest.raises(ValueError, match=r"notes\.md:2: 'video' \(video\)") as refused:
        check_no_task_words(tmp_path, {"video": WORDS["video"]}, options)
    assert "notes.md:1" not in str(refused.value)  # the answers' own names are no leftover


def test_bad_answers_are_refused_before_anything_is_written(cookies, capfd):
    result = cookies.bake(extra_context={**NAME, "tasks": "cnn,speech"}, template=str(ROOT / "template"))
    assert result.exit_code != 0 and result.project_path is None
    assert "tasks='cnn,speech': give a comma-separated subset of cnn, lm, sentences, video" in capfd.readouterr().err


def project_python(project: Path) -> Path:
    """A virtual environment for the baked project: this one's packages, the project installed editable."""
    venv = project.parent / f"{project.name}-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    parents = [p for p in sys.path if p.endswith("site-packages")]
    (site / "_parent_packages.pth").write_text("\n".join(parents) + "\n")
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]  # this pip, installing into that environment
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "-e", str(project)], check=True)
    (venv / SWEEPS_VALIDATOR.name).symlink_to(SWEEPS_VALIDATOR)
    return python


def run_project_tests(project: Path, marker: str, paths: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    python = project_python(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    # one process: this test already runs on a worker of the outer suite, beside the others
    command = [str(python), "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-m", marker, *paths]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1800)


# What each bake runs. Every bake: its smoke suite (each kept experiment, renamed package). A single-task
# bake also runs its task's fast tests and the fast config and user-error checks, now on that task as the
# project's default; the template's own suite already runs every core test, and CI time is bounded.
OWN_TASK_PATHS = ("tests/tasks", "tests/test_smoke.py", "tests/test_config.py", "tests/test_user_errors.py")
SUITES = [
    ("default", "smoke", ()),
    *((task, "smoke", ()) if task == DEFAULT_TASK else (task, "smoke or not slow", OWN_TASK_PATHS) for task in TASKS),
]


@pytest.mark.slow
@pytest.mark.parametrize(("bake_name", "marker", "paths"), SUITES, ids=[name for name, *_ in SUITES])
def test_the_baked_project_passes_its_own_tests(cookies, bake_name, marker, paths):
    answers = dict(BAKES[bake_name])
    if importlib.util.find_spec(answers.get("default_logger", "csv")) is None:
        answers["default_logger"] = "csv"  # a logger this environment lacks (tensorboard is no test dependency)
    project = bake(cookies, **answers)
    done = run_project_tests(project, marker, paths)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout) and " failed" not in done.stdout
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=project, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
