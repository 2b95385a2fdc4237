"""Baking new projects with cookiecutter (through pytest-cookies), and testing what comes out.

Each bake is checked for its layout and for leftovers (template machinery, this
repository's names, the words of the tasks not chosen); the baked projects' own test suites
then run in a virtual environment of their own, with the package installed under its new name
and lightning-template-core from a wheel built here; a bake takes a newer core by one bound.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT / "template"))
from bake import (
    LEFTOVERS,
    MARKDOWN_LINK,
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
    assert (project / "src" / "acme_vision" / "tasks").is_dir() and not (
        project / "src" / "lightning_template"
    ).exists()
    assert not (project / "template").exists() and not (project / "core").exists()
    assert not list((project / "tests").glob("*.py")), "the core's tests stay in the template's repository"
    assert {path.parent.name for path in (project / "tests" / "tasks").glob("*/tiny.yaml")} == set(tasks)
    experiments = {p.stem for p in (project / "configs" / "experiment").glob("*.yaml")}
    assert experiments and {e.split("_")[0] for e in experiments} == set(tasks)
    assert {p.stem.split("_")[0] for p in (project / "configs" / "sweep").glob("*.yaml")} == set(tasks)

    files = baked_text(project)
    cruft = json.loads(files.pop(".cruft.json"))
    assert cruft["directory"] == "template" and cruft["context"]["cookiecutter"]["tasks"] == ",".join(tasks)
    for path, text in files.items():
        assert not LEFTOVERS.search(text), f"{path}: {LEFTOVERS.search(text).group(0)!r}"
        for link in MARKDOWN_LINK.finditer(text) if path.endswith(".md") else ():
            assert (project / path).parent.joinpath(link.group(2)).exists(), f"{path}: a dead link {link.group(0)}"
        assert "template" not in text.lower().replace("lightning-template-core", "").replace(
            "lightning_template_core", ""
        ), f"{path} mentions the template"
        for task in set(TASKS) - set(tasks):
            found = WORDS[task].search(path + "\n" + text)
            assert not found, f"{path} keeps {found.group(0)!r} of the left-out task {task}"

    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["name"] == "acme-vision"
    assert pyproject["project"]["entry-points"]["lightning_template_core.configs"] == {
        "acme_vision": "acme_vision:CONFIGS"
    }
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

    project_defaults = yaml.safe_load(files["configs/project/default.yaml"])["defaults"]
    logger = answers.get("default_logger", "csv")
    assert {"override /experiment": tasks[0]} in project_defaults
    assert {"override /logger": "csv" if logger == "csv" else ["csv", logger]} in project_defaults
    assert files["README.md"].startswith("# Acme Vision\n")
    (core,) = [r for r in pyproject["project"]["dependencies"] if r.startswith("lightning-template-core")]
    extras = set(re.findall(r"\[([^\]]*)\]", core)[0].split(",")) if "[" in core else set()
    assert extras == {logger} - {"csv"}  # the default tracker's extra of the core, no other


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
    assert owner(Path("configs/project/default.yaml")) is owner(Path(f"src/{PACKAGE}/tasks/__init__.py")) is None
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


@pytest.fixture(scope="session")
def core_wheels(tmp_path_factory) -> Path:
    """A folder with a wheel of this repository's lightning-template-core, as ``make core-wheel`` builds it."""
    wheels = tmp_path_factory.mktemp("core-wheels")
    build_wheel(ROOT / "core", wheels)
    return wheels


def build_wheel(source: Path, wheels: Path) -> None:
    """A wheel of the core at ``source``, built from a copy (setuptools writes build/ beside the sources)."""
    copy = wheels.parent / f"{wheels.name}-source-{source.name}"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("site", "build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir"]
    subprocess.run([*pip, str(wheels), str(copy)], check=True, capture_output=True)


def project_python(project: Path, wheels: Path, core: str = "lightning-template-core") -> Path:
    """A virtual environment for the baked project: this one's packages (torch, Lightning, ...), the core from
    ``wheels`` (``core``: the requirement), the project installed editable."""
    venv = project.parent / f"{project.name}-venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next(venv.glob("lib/python*/site-packages"))
        parents = [p for p in sys.path if p.endswith("site-packages")]
        (site / "_parent_packages.pth").write_text("\n".join(parents) + "\n")
    python = venv / "bin" / "python"
    if (venv / "bin" / "fit").exists():  # a core installed before: out, so that one version's files remain
        uninstall = [sys.executable, "-m", "pip", "--python", str(python), "uninstall", "-q", "-y"]
        subprocess.run([*uninstall, "lightning-template-core"], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    # the core into that environment (this one's editable core stays out: --ignore-installed), then the project
    subprocess.run([*pip, "--ignore-installed", "--no-index", "--find-links", str(wheels), core], check=True)
    subprocess.run([*pip, "-e", str(project)], check=True)
    return python


def run_project_tests(project: Path, python: Path, marker: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    # one process: this test already runs on a worker of the outer suite, beside the others
    command = [str(python), "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-m", marker]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1800)


def assert_passed(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout) and " failed" not in done.stdout


# What each bake runs: its tasks' fast tests and smoke runs, on the core from a wheel (the guarantee tests of
# the kit, marked slow, run on every task in the template's own suite).
SUITES = ["default", *TASKS]


@pytest.mark.slow
@pytest.mark.parametrize("bake_name", SUITES)
def test_the_baked_project_passes_its_own_tests(cookies, core_wheels, bake_name):
    answers = dict(BAKES[bake_name])
    if importlib.util.find_spec(answers.get("default_logger", "csv")) is None:
        answers["default_logger"] = "csv"  # a logger this environment lacks (tensorboard is no test dependency)
    project = bake(cookies, **answers, core_from=str(core_wheels))
    assert_passed(run_project_tests(project, project_python(project, core_wheels), "smoke or not slow"))
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=project, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]


# A change of behaviour in core 0.2.1 that a baked project's own test can see: the default seed of every command.
SEED_A, SEED_B = "seed: 0 ", "seed: 7 "
SEES_THE_CORE = """
import subprocess, sys
from pathlib import Path

def test_the_core_gives_its_seed():
    fit = Path(sys.executable).with_name("fit")
    out = subprocess.run([str(fit), "--cfg", "job"], capture_output=True, text=True, check=True).stdout
    assert "seed: {seed}" in out.splitlines()
"""


@pytest.mark.slow
def test_a_bake_takes_a_newer_core_by_raising_one_bound_and_keeps_its_own_edits(cookies, tmp_path):
    """Bake against core A (0.2.0), edit the baked task, raise the bound to a core B (0.2.1, built here, whose
    default seed differs): the baked suite passes on B and sees B's change; the edit is still there."""
    wheels = tmp_path / "wheels"
    build_wheel(ROOT / "core", wheels)
    core_b = tmp_path / "core-b"
    shutil.copytree(ROOT / "core", core_b, ignore=shutil.ignore_patterns("site", "build", "*.egg-info", "__pycache__"))
    init = core_b / "src" / "lightning_template_core" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.2.0"', '__version__ = "0.2.1"'))
    fit_yaml = core_b / "src" / "lightning_template_core" / "configs" / "fit.yaml"
    assert SEED_A in fit_yaml.read_text()
    fit_yaml.write_text(fit_yaml.read_text().replace(SEED_A, SEED_B))
    build_wheel(core_b, wheels)

    project = bake(cookies, tasks="lm", core_from=str(wheels))
    module = project / "src" / "acme_vision" / "tasks" / "lm" / "module.py"
    edited = module.read_text() + "\n# our own change to the task\n"
    module.write_text(edited)
    (project / "tests" / "test_sees_the_core.py").write_text(SEES_THE_CORE.format(seed=0))
    python = project_python(project, wheels, core="lightning-template-core==0.2.0")
    assert_passed(run_project_tests(project, python, "not slow"))

    pyproject = project / "pyproject.toml"
    raised = pyproject.read_text().replace("lightning-template-core>=0.2.0,", "lightning-template-core>=0.2.1,")
    assert raised != pyproject.read_text()
    pyproject.write_text(raised)
    (project / "tests" / "test_sees_the_core.py").write_text(SEES_THE_CORE.format(seed=7))
    python = project_python(project, wheels, core=re.search(r'"(lightning-template-core[^"]*)"', raised).group(1))
    version = subprocess.run(
        [str(python), "-c", "import lightning_template_core as c; print(c.__version__)"],
        capture_output=True,
        text=True,
        cwd=project,
        check=True,
    ).stdout.strip()
    assert version == "0.2.1"
    assert_passed(run_project_tests(project, python, "not slow"))
    assert module.read_text() == edited


def git(folder: Path, *arguments: str) -> None:
    identity = ["-c", "user.email=test@example.invalid", "-c", "user.name=test"]
    subprocess.run(["git", *identity, *arguments], cwd=folder, check=True, capture_output=True)


def test_cruft_update_brings_the_templates_later_changes_and_keeps_the_projects_edits(tmp_path):
    """A bake records what cruft needs: two later changes of the template to a file the project owns arrive by
    `cruft update`, the project's own edit of its task stays, and `cruft check` is clean after each."""
    template = tmp_path / "template-repository"
    for relative in source_files(ROOT):  # this working tree, as a repository of its own
        (template / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, template / relative)
    git(template, "init", "-q")
    git(template, "add", "-A")
    git(template, "commit", "-qm", "template")
    cookiecutter = Path(sys.executable).with_name("cookiecutter")
    bake_command = [str(cookiecutter), "--no-input", str(template), "--directory", "template", "tasks=lm"]
    subprocess.run([*bake_command, "-o", str(tmp_path)], check=True, capture_output=True)
    project = tmp_path / "my-project"
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "bake")
    module = project / "src" / "my_project" / "tasks" / "lm" / "module.py"
    module.write_text(module.read_text() + "# the project's own change\n")
    git(project, "commit", "-qam", "our edit")
    cruft = str(Path(sys.executable).with_name("cruft"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for change in ("A first line the template adds later.", "A second one."):
        page = template / "docs" / "tasks" / "lm.md"
        page.write_text(page.read_text() + change + "\n")
        git(template, "commit", "-qam", change)
        done = subprocess.run([cruft, "update", "-y"], cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert (project / "docs" / "tasks" / "lm.md").read_text().endswith(change + "\n")
        assert not list(project.rglob("*.rej")), "cruft could not apply the template's change"
        git(project, "add", "-A")
        git(project, "commit", "-qm", f"cruft update: {change}")
        checked = subprocess.run([cruft, "check"], cwd=project, env=env, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout[-3000:]
    assert module.read_text().endswith("# the project's own change\n")
