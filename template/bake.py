"""Bake a new project from this repository: copy what its user owns, keep the chosen tasks, rename it.

The repository root is a working project (its tests, its CI) on the core library in ``core/``;
the cookiecutter hook calls :func:`bake` to copy the files a user owns (:data:`BAKED`: the
tasks, their configs, tests and docs, the Makefile, README, pyproject and CI) into the new
project's folder. The core, its tests and benchmarks stay here: the project depends on
``lightning-template-core`` by a version range and takes its fixes by raising the bound. A task is the package
``src/<package>/tasks/<task>/``, and its files are found by convention (:func:`owner`), so
leaving a task out is deleting them; a new task adds nothing here. Where a shared file must
still differ per task, a block between marker lines ``# >>> video`` and ``# <<< video``
(``<!-- >>> lm -->`` in Markdown) is kept when one of the named tasks is chosen;
``template`` marks what only this repository has. Marker lines never reach the baked project.

Then the package, project and environment-variable names are replaced everywhere, a few
settings are written (default experiment and logger, Python versions, author), and the bake
refuses its output if a left-out task's words (:func:`task_words`) remain anywhere.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LOGGERS = ("csv", "tensorboard", "wandb", "mlflow")
PACKAGE = "lightning_template"
SLUG = "lightning-template"
DESCRIPTION = "PyTorch Lightning template where any split of a global batch trains the same model"
ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = f"src/{PACKAGE}/tasks"
# a task is a package in TASKS_DIR (its __init__.py declares its TERMS)
TASKS = tuple(sorted(p.parent.name for p in (ROOT / TASKS_DIR).glob("*/__init__.py")))
# Folders whose files belong to one task each: <folder>/<task>/... (or <folder>/<task>.md);
# folders whose files belong to the task their name starts with: <task>.yaml, <task>_*.py
TASK_FOLDERS = (TASKS_DIR, "tests/tasks", "docs/tasks")
TASK_PREFIXED = ("configs/*", "scripts")
TEMPLATE_FILES = ("template/*", "tests/test_template.py")
# What a bake holds (fnmatch patterns; "*" crosses folders): the files its user owns, and no other.
BAKED = (
    "src/*",
    "configs/*",
    "tests/tasks/*",
    "docs/tasks/*",
    "Makefile",
    "README.md",
    "pyproject.toml",
    ".gitignore",
    ".github/workflows/*",
)
CORE = "lightning-template-core"

MARKER = re.compile(r"^\s*(?:#|<!--)\s*(>>>|<<<)\s*([a-z][a-z ]*?)\s*(?:-->)?\s*$")
# cruft's record of the bake (template, commit, answers): the one file that names this template
CRUFT_RECORD = ".cruft.json"
# What no baked file may contain: template machinery, this repository's names, marker lines.
# (GitHub's workflow expressions, ${{ }}, are not template machinery.)
# (the core's names, lightning-template-core and lightning_template_core, are the project's dependency.)
LEFTOVERS = re.compile(
    r"(?<!\$)\{\{|\{%|cookiecutter|lightning[-_ ]template(?![-_]core)|^\s*(?:#|<!--)\s*(?:>>>|<<<)", re.I | re.M
)


@dataclass(frozen=True)
class Options:
    """The answers to the cookiecutter questions."""

    project_name: str
    project_slug: str
    package_name: str
    description: str
    author: str
    tasks: tuple[str, ...]
    default_logger: str
    python_versions: tuple[str, ...]
    core_from: str = ""  # where pip finds lightning-template-core besides the package index (wheels folder or URL)

    @classmethod
    def from_context(cls, context: dict) -> Options:
        return cls(
            project_name=context["project_name"],
            project_slug=context["project_slug"],
            package_name=context["package_name"],
            description=context["description"],
            author=context["author"],
            # in the template's order: the first is the default experiment and carries the shared tests
            tasks=tuple(sorted(split_list(context["tasks"]), key=lambda t: TASKS.index(t) if t in TASKS else 99)),
            default_logger=context["default_logger"],
            python_versions=split_list(context["python_versions"]),
            core_from=str(context.get("core_from", "")).strip(),
        )

    def check(self) -> None:
        """Refuse answers that would bake a broken project, saying which answer and why."""
        problems = []
        if not self.tasks or set(self.tasks) - set(TASKS):
            problems.append(f"tasks={','.join(self.tasks)!r}: give a comma-separated subset of {', '.join(TASKS)}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.package_name) or self.package_name == PACKAGE:
            problems.append(f"package_name={self.package_name!r}: a lower-case Python identifier, e.g. acme_vision")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.project_slug):
            problems.append(f"project_slug={self.project_slug!r}: lower-case letters, digits and dashes")
        if self.default_logger not in LOGGERS:
            problems.append(f"default_logger={self.default_logger!r}: one of {', '.join(LOGGERS)}")
        if not self.python_versions or not all(re.fullmatch(r"3\.\d+", v) for v in self.python_versions):
            problems.append(f"python_versions={','.join(self.python_versions)!r}: e.g. 3.11,3.12")
        if problems:
            raise ValueError("Cannot bake this project: " + "; ".join(problems) + ".")


def split_list(text: str | list) -> tuple[str, ...]:
    items = text if isinstance(text, list) else str(text).replace(" ", ",").split(",")
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def source_files(root: Path) -> list[Path]:
    """The project's files: what git tracks or would track (ignored files such as .venv/ and runs/ stay out)."""
    if (root / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(Path(name) for name in listed.split("\0") if name and (root / name).is_file())
    return sorted(_walk_without_ignored(root))


def _walk_without_ignored(root: Path) -> list[Path]:
    """Without git (an unpacked archive): every file but those .gitignore's plain patterns exclude."""
    patterns = [".git"]
    ignore = root / ".gitignore"
    if ignore.is_file():
        patterns += [line.strip().strip("/") for line in ignore.read_text().splitlines() if line.strip()[:1] not in "#"]
    found = []
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in patterns)]
        found += [relative / f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    return found


def owns(task: str, path: Path) -> bool:
    """Whether the convention gives ``path`` (relative to the root) to ``task``."""
    for folder in TASK_FOLDERS:
        if path.is_relative_to(folder):
            return Path(path.relative_to(folder).parts[0]).stem == task
    if any(fnmatch.fnmatch(path.parent.as_posix(), folder) for folder in TASK_PREFIXED):
        return path.stem == task or path.stem.startswith(f"{task}_")
    return False


def owner(path: Path) -> str | None:
    """The task (or ``template``) a file belongs to; None for a shared file."""
    if any(fnmatch.fnmatch(path.as_posix(), pattern) for pattern in TEMPLATE_FILES):
        return "template"
    return next((task for task in TASKS if owns(task, path)), None)


def is_kept(path: Path, tasks: tuple[str, ...]) -> bool:
    """Whether a bake with ``tasks`` holds ``path``: a file its user owns, of a chosen task or shared."""
    baked = any(fnmatch.fnmatch(path.as_posix(), pattern) for pattern in BAKED)
    return baked and owner(path) in (None, *tasks)


def top_level_names(modules: Iterable[Path]) -> set[str]:
    """The public classes and functions ``modules`` define (read, not imported)."""
    names = set()
    for module in modules:
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name[0] != "_":
                names.add(node.name)
    return names


def declared_terms(package: Path) -> tuple[str, ...]:
    """The words a task declares as its own: ``TERMS = (...)`` in its ``__init__.py``."""
    for node in ast.parse((package / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TERMS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise ValueError(f"{package / '__init__.py'}: declares no TERMS")


def task_words(source: Path = ROOT) -> dict[str, re.Pattern]:
    """What tells each task apart, for the check that a bake left none of a left-out task behind.

    Its name and TERMS, in any case, as whole words (``_`` separates words; a plural ``s`` counts;
    not after another task's name and ``_``, as in that task's ``sentences_lm``),
    and the compound names of the classes and functions only its package defines, as written (a
    single word such as ``probe`` says no task unless TERMS lists it).
    """
    tasks_dir = source / TASKS_DIR
    defined = {task: top_level_names((tasks_dir / task).rglob("*.py")) for task in TASKS}
    modules = [*(source / "src" / PACKAGE).rglob("*.py"), *(source / "core" / "src").rglob("*.py")]
    core = top_level_names(module for module in modules if not module.is_relative_to(tasks_dir))
    words = {}
    for task in TASKS:
        others = core.union(*(defined[t] for t in TASKS if t != task))
        names = sorted(n for n in defined[task] - others if re.search(r"_|\d|.[A-Z]", n))
        terms = sorted({task, *declared_terms(tasks_dir / task)}, key=len, reverse=True)
        phrases = "|".join(r"[\s_-]+".join(map(re.escape, term.split())) for term in terms)
        # a compound named for another task (sentences_lm) is that task's
        theirs = "".join(rf"(?<!{re.escape(other)}_)" for other in TASKS if other != task)
        pattern = rf"(?<![A-Za-z0-9]){theirs}(?i:{phrases})s?(?![A-Za-z0-9])"
        words[task] = re.compile(pattern + (rf"|\b(?:{'|'.join(names)})\b" if names else ""))
    return words


def keep_blocks(text: str, tasks: tuple[str, ...], where: str) -> str:
    """``text`` without the marker lines and without the blocks none of whose tasks is chosen."""
    kept, open_blocks = [], []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        marker = MARKER.match(line)
        if marker is None:
            if all(any(owner in tasks for owner in owners) for owners in open_blocks):
                kept.append(line)
            continue
        owners = tuple(marker.group(2).split())
        if marker.group(1) == ">>>":
            open_blocks.append(owners)
        elif not open_blocks or open_blocks.pop() != owners:
            raise ValueError(f"{where}:{number}: '<<< {' '.join(owners)}' closes no '>>> {' '.join(owners)}'")
    if open_blocks:
        raise ValueError(f"{where}: '>>> {' '.join(open_blocks[-1])}' is never closed")
    return "".join(kept)


def rename(text: str, options: Options) -> str:
    """This repository's names replaced by the project's; the core's (its dependency) kept."""
    text = text.replace(DESCRIPTION, options.description)
    text = re.sub(rf"\b{PACKAGE}\b", options.package_name, text)
    return re.sub(rf"(?<![\w-]){re.escape(SLUG)}(?![\w-])", options.project_slug, text)


def target_path(path: Path, options: Options) -> Path:
    return Path(path.as_posix().replace(f"src/{PACKAGE}/", f"src/{options.package_name}/"))


def configure(relative: str, text: str, options: Options) -> str:
    """The settings a few files take from the answers."""
    versions = options.python_versions
    if relative == "configs/project/default.yaml":
        logger = "csv" if options.default_logger == "csv" else f"[csv, {options.default_logger}]"
        text = re.sub(r"(?m)^(  - override /experiment: )\w+", rf"\g<1>{options.tasks[0]}", text)
        text = re.sub(r"(?m)^(  - override /logger: )csv\b", rf"\g<1>{logger}", text)
    elif relative == "Makefile":
        text = re.sub(r"(?m)^CORE_FROM \?=.*$", f"CORE_FROM ?= {options.core_from}".rstrip(), text)
    elif relative == "pyproject.toml":
        oldest = min(versions, key=lambda v: int(v.split(".")[1]))
        text = re.sub(r'(?m)^requires-python = ".*"', f'requires-python = ">={oldest}"', text)
        text = re.sub(r'(?m)^target-version = ".*"', f'target-version = "py{oldest.replace(".", "")}"', text)
        text = re.sub(r"(?m)^(license = .*\n)", rf'\g<1>authors = [{{ name = "{options.author}" }}]\n', text)
        if options.default_logger != "csv":  # the default tracker's extra of the core becomes the dependency's
            text = text.replace(f'"{CORE}>=', f'"{CORE}[{options.default_logger}]>=')
    elif relative.startswith(".github/workflows/"):
        quoted = ", ".join(f'"{v}"' for v in versions)
        text = re.sub(r"(?m)^(\s*python: )\[[^\]]*\]", rf"\g<1>[{quoted}]", text)
        text = re.sub(r'(?m)(python: )"3\.\d+"', rf'\g<1>"{versions[-1]}"', text)
        text = re.sub(r'(?m)(python-version: )"3\.\d+"', rf'\g<1>"{versions[-1]}"', text)
    elif relative == "README.md":
        text = re.sub(r"\A# .*\n", f"# {options.project_name}\n", text)
    return text


def bake(source: Path, target: Path, options: Options) -> list[Path]:
    """Write the project for ``options`` into ``target`` from the repository at ``source``; return its files."""
    options.check()
    words = task_words(source)
    left_out = {task: words[task] for task in TASKS if task not in options.tasks}
    written = []
    for relative in source_files(source):
        if not is_kept(relative, options.tasks):
            continue
        destination = target / target_path(relative, options)
        destination.parent.mkdir(parents=True, exist_ok=True)
        data = (source / relative).read_bytes()
        try:
            text = data.decode()
        except UnicodeDecodeError:
            destination.write_bytes(data)
        else:
            text = keep_blocks(text, options.tasks, relative.as_posix())
            text = configure(relative.as_posix(), rename(text, options), options)
            destination.write_text(text)
        shutil.copymode(source / relative, destination)
        written.append(destination)
    written.append(record_for_cruft(source, target, options))
    unlink_pages_left_behind(target)
    tidy(target)
    check_no_leftovers(target)
    check_no_task_words(target, left_out, options)
    return written


MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((?!https?:|mailto:|#)([^)#\s]+)(#[^)\s]*)?\)")


def unlink_pages_left_behind(target: Path) -> None:
    """Links of the baked Markdown to pages that stay in this repository (the core's docs) become their text."""
    for page in target.rglob("*.md"):
        text = page.read_text()
        unlinked = MARKDOWN_LINK.sub(functools.partial(_kept_or_text, page.parent), text)
        if unlinked != text:
            page.write_text(unlinked)


def _kept_or_text(folder: Path, link: re.Match) -> str:
    return link.group(0) if (folder / link.group(2)).exists() else link.group(1)


def record_for_cruft(source: Path, target: Path, options: Options) -> Path:
    """``.cruft.json``: the template, its commit and the answers, so that ``cruft check`` and ``cruft update``
    bring this template's later changes to the files the project owns (the core comes by its version bound)."""
    commit = None
    if (source / ".git").exists() and shutil.which("git"):
        done = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True)
        commit = done.stdout.strip() or None
    answers = {
        "project_name": options.project_name,
        "project_slug": options.project_slug,
        "package_name": options.package_name,
        "description": options.description,
        "author": options.author,
        "tasks": ",".join(options.tasks),
        "default_logger": options.default_logger,
        "python_versions": ",".join(options.python_versions),
        "core_from": options.core_from,
        "_template": str(source),
    }
    record = {
        "template": str(source),
        "commit": commit,
        "checkout": None,
        "context": {"cookiecutter": answers},
        "directory": "template",
        "skip": [".git", ".venv", CRUFT_RECORD],  # cruft keeps its own record
    }
    path = target / CRUFT_RECORD
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def tidy(target: Path) -> None:
    """Re-format and re-sort imports with ruff, where it is installed: a new package name changes line lengths."""
    beside = Path(sys.executable).with_name("ruff")
    ruff = str(beside) if beside.is_file() else shutil.which("ruff")
    if ruff is None:
        print("ruff is not installed here: run `ruff format . && ruff check --fix .` in the new project once.")
        return
    subprocess.run([ruff, "format", "--quiet", "--no-cache", "."], cwd=target, check=False)
    subprocess.run([ruff, "check", "--fix", "--quiet", "--no-cache", "--select", "I", "."], cwd=target, check=False)


def check_no_leftovers(target: Path) -> None:
    """Fail the bake if a file still holds template machinery, this repository's names or markers."""
    found = []
    for path in sorted(target.rglob("*")):
        if path.is_file() and ".git" not in path.parts and path.name != CRUFT_RECORD:
            match = LEFTOVERS.search(path.read_text(errors="ignore"))
            if match:
                found.append(f"{path.relative_to(target)}: {match.group(0)!r}")
    if found:
        raise ValueError("The baked project still holds template text: " + "; ".join(found[:10]))


def check_no_task_words(target: Path, words: dict[str, re.Pattern], options: Options) -> None:
    """Fail the bake if a file's path or text still holds a word of a left-out task (the answers' own names aside)."""
    names = (options.project_name, options.project_slug, options.package_name, options.description, options.author)
    names += (options.package_name.upper(),)
    chosen = re.compile("|".join(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])" for name in names))
    found = []
    for path in sorted(target.rglob("*")):
        relative = path.relative_to(target)
        if not path.is_file() or ".git" in relative.parts or path.name == CRUFT_RECORD:
            continue
        places = [(relative.as_posix(), relative.as_posix())]
        places += [(f"{relative}:{n}", line) for n, line in enumerate(path.read_text(errors="ignore").splitlines(), 1)]
        for where, line in places:
            line = chosen.sub("", line)
            found += [f"{where}: {m.group(0)!r} ({task})" for task, word in words.items() if (m := word.search(line))]
    if found:
        raise ValueError(f"The baked project keeps {len(found)} words of left-out tasks: " + "; ".join(found[:20]))
