"""The core's private layers import only downward, the core imports no project, and a task only the public API."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "src" / "lightning_template_core"
TASKS = ROOT / "src" / "lightning_template" / "tasks"
# bottom first: a layer imports the layers before it, never one after it (the commands and the kit sit on all)
LAYERS = (
    ("_errors", "_reporting", "_secrets", "_stop_before_training", "_moved"),
    ("_batching", "_nets"),
    ("_files",),
    ("_training",),
    ("_checkpointing",),
    ("_callbacks",),
    ("_verification",),
    ("_command_line",),
    ("_runs",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def upward_imports(core: Path = CORE) -> list[str]:
    found = []
    for path in sorted(core.rglob("*.py")):
        layer = path.relative_to(core).parts[0].removesuffix(".py")
        if layer not in RANK:
            continue  # the commands, the package's API, the test kit
        for line, module in imported(path):
            parts = module.split(".")
            if parts[0] == "lightning_template_core" and len(parts) > 1 and RANK.get(parts[1], -1) > RANK[layer]:
                found.append(f"{path.relative_to(core)}:{line}: {layer} imports {parts[1]}")
    return found


def test_every_core_layer_imports_only_the_layers_below_it():
    assert not upward_imports(), "\n".join(upward_imports())


def test_the_check_finds_an_import_up_the_layers(tmp_path):
    (tmp_path / "_batching").mkdir()
    (tmp_path / "_batching" / "x.py").write_text("from lightning_template_core._runs.assembly import build_run\n")
    assert upward_imports(tmp_path) == ["_batching/x.py:1: _batching imports _runs"]


def test_the_core_imports_no_project_and_a_task_only_the_public_api():
    core = [
        f"{p}:{line}" for p in CORE.rglob("*.py") for line, m in imported(p) if m.split(".")[0] == "lightning_template"
    ]
    assert not core, core
    private = [
        f"{p.relative_to(ROOT)}:{line}: {module}"
        for p in TASKS.rglob("*.py")
        for line, module in imported(p)
        if module.startswith("lightning_template_core.")
    ]
    assert not private, "a task reaches into the core's private modules:\n" + "\n".join(private)
