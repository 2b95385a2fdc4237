"""Security hygiene: nothing in src/ runs code from what it reads, and the CI workflows pass their audits.

Every check is also run on a deliberately broken copy (a file in tmp_path), so each assertion is
shown to fail when it should: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "src", ROOT / "core" / "src")  # the project's tasks and the core library
WORKFLOWS = ROOT / ".github" / "workflows"
EXPORT_DOCS = ROOT / "docs" / "export.md"

# Modules whose loads run code from the data (pickle's family, marshal).
PICKLE_LIKE = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal"}
# Calls that run a string as code or as a shell command.
RUNS_STRINGS = {"eval", "exec", "os.system", "os.popen"}

BAD_SOURCE = """\
import os
import pickle
import subprocess
import torch
import torch as T
from torch import load
from marshal import loads
T.load("a.ckpt")
load("b.ckpt", weights_only=False)
torch.load("c.ckpt", weights_only=flag)
trainer.fit(model, ckpt_path="last")
eval("1 + 1")
exec("x = 1")
os.system("ls")
subprocess.run("ls", shell=True)
"""
# The same kinds of calls, written safely: none may be reported.
GOOD_SOURCE = """\
import subprocess
import torch
torch.load("d.ckpt", map_location="cpu", weights_only=True)
trainer.test(model, ckpt_path=path, weights_only=True)
model.eval()
torch.export.load("model.pt2")
subprocess.run(["ls"], shell=False)
"""


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """What each imported name stands for (``T`` -> ``torch``, ``load`` -> ``torch.load``)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname})
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return aliases


def called_name(call: ast.Call, aliases: dict[str, str]) -> str:
    """The dotted name a call calls (``torch.load``), aliases undone; "" for ``f()()`` and the like."""
    parts, node = [], call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def is_literal(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def parsed(path: Path) -> tuple[ast.AST, dict[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return tree, import_aliases(tree)


def unsafe_checkpoint_loads(path: Path) -> list[str]:
    """Checkpoint reads without a literal ``weights_only=True``, as ``file:line``.

    Without it torch.load unpickles, which can run code; Lightning's fit/validate/test/predict
    read ``ckpt_path=`` with torch.load and leave ``weights_only=None`` to torch's default,
    which is False before torch 2.6 (the project allows older) and for remote files.
    """
    tree, aliases = parsed(path)
    found = []
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        reads = called_name(call, aliases) == "torch.load" or keyword(call, "ckpt_path") is not None
        if reads and not is_literal(keyword(call, "weights_only"), True):
            found.append(f"{path}:{call.lineno}")
    return found


def code_from_data(path: Path) -> list[str]:
    """Pickle-family imports, eval/exec/os.system/os.popen calls and shell= commands, as ``file:line: what``."""
    tree, aliases = parsed(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path}:{node.lineno}: import {m}" for m in modules if m.split(".")[0] in PICKLE_LIKE]
        elif isinstance(node, ast.Call):
            name = called_name(node, aliases)
            if name in RUNS_STRINGS:
                found.append(f"{path}:{node.lineno}: {name}()")
            shell = keyword(node, "shell")
            if shell is not None and not is_literal(shell, False):
                found.append(f"{path}:{node.lineno}: shell=")
    return found


def source_files() -> list[Path]:
    files = sorted(path for source in SOURCES for path in source.rglob("*.py"))
    assert all(any(path.is_relative_to(source) for path in files) for source in SOURCES), "a source folder is empty"
    return files


def lines(found: list[str]) -> list[int]:
    return sorted(int(hit.split(":")[1]) for hit in found)


def test_the_checks_report_each_unsafe_call_and_nothing_safe(tmp_path):
    bad, good = tmp_path / "bad.py", tmp_path / "good.py"
    bad.write_text(BAD_SOURCE)
    good.write_text(GOOD_SOURCE)
    assert lines(unsafe_checkpoint_loads(bad)) == [8, 9, 10, 11]
    assert lines(code_from_data(bad)) == [2, 7, 12, 13, 14, 15]
    assert unsafe_checkpoint_loads(good) == []
    assert code_from_data(good) == []


def test_every_checkpoint_read_in_src_is_weights_only():
    offenders = [hit for path in source_files() for hit in unsafe_checkpoint_loads(path)]
    assert not offenders, "torch.load / ckpt_path= without weights_only=True:\n" + "\n".join(offenders)


def test_src_runs_no_code_from_data():
    offenders = [hit for path in source_files() for hit in code_from_data(path)]
    assert not offenders, "code that runs what it reads:\n" + "\n".join(offenders)


def trust_note(markdown: str) -> bool:
    """Whether a paragraph says weights_only does not cover torch.export.load or torch.jit.load: trusted files only.

    Those rebuild a program, so no weights_only can make an exported file safe to load: the
    docs must say so instead.
    """
    for paragraph in re.split(r"\n\s*\n", markdown):
        if all(word in paragraph for word in ("weights_only", "torch.export.load", "torch.jit.load", "trust")):
            return True
    return False


def test_the_export_docs_say_exported_files_need_a_trusted_source():
    docs = EXPORT_DOCS.read_text(encoding="utf-8")
    assert trust_note(docs), f"{EXPORT_DOCS}: say that torch.export.load and torch.jit.load need trusted files"
    assert not trust_note(docs.replace("trust", "")), "the check passes without the note"


def tool(name: str) -> str:
    """The path of a dev tool's executable, or a skip saying how to install it.

    Found through the installed package's file list first: the baked projects' environments
    reach this environment's packages but not its bin/ folder.
    """
    try:
        files = importlib.metadata.files(name) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        path = Path(os.path.normpath(file.locate()))
        if file.name == name and path.is_file():
            return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install -e '.[dev]' (the dev extra pins it)")
    return found


def workflow_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def zizmor(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("zizmor"), "--offline", str(folder)], capture_output=True, text=True, timeout=120)


def schema_check(files: list[Path]) -> subprocess.CompletedProcess:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """The workflows copied to tmp_path with ``old`` (a regex) replaced; fails if nothing was replaced."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    changed = False
    for path in workflow_files(WORKFLOWS):
        text = path.read_text(encoding="utf-8")
        broken = re.sub(old, new, text, flags=re.MULTILINE)
        changed |= broken != text
        (folder / path.name).write_text(broken, encoding="utf-8")
    assert changed, f"the break {old!r} matched nothing: the negative control would prove nothing"
    return folder


def test_the_workflows_pass_zizmor():
    assert workflow_files(WORKFLOWS), f"no workflows in {WORKFLOWS}"
    done = zizmor(WORKFLOWS)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


@pytest.mark.parametrize(
    ("old", "new", "audit"),
    [
        (r"@[0-9a-f]{40} # (v\d+)\S*", r"@\1", "unpinned-uses"),  # back to a movable tag
        (r"\n +with:\n +persist-credentials: false$", "", "artipacked"),  # checkout's default: true
        (r"^ *permissions:.*\n(?: +contents: read\n)?", "", "excessive-permissions"),
    ],
    ids=["unpinned", "credentials", "permissions"],
)
def test_zizmor_reports_a_broken_copy(tmp_path, old, new, audit):
    done = zizmor(broken_copy(tmp_path, old, new))
    assert done.returncode != 0 and audit in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


def test_the_workflows_match_githubs_schema():
    done = schema_check(workflow_files(WORKFLOWS))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_the_schema_check_reports_a_broken_copy(tmp_path):
    folder = broken_copy(tmp_path, r"^( *)runs-on:", r"\1run-on:")  # a misspelt key
    done = schema_check(workflow_files(folder))
    assert done.returncode != 0 and "run-on" in done.stdout + done.stderr, done.stdout[-3000:]


def unpinned_actions(text: str) -> list[str]:
    """``uses:`` lines not pinned by a full commit SHA with the release named after it (``@<sha> # v4.4.0``).

    A tag can be moved to other code after review; a commit cannot. The comment says which
    release the SHA is, for the next upgrade.
    """
    pinned = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")
    return [line.strip() for line in text.splitlines() if "uses:" in line and not pinned.search(line)]


def test_actions_are_pinned_by_commit_with_the_version_named():
    offenders = [f"{p.name}: {u}" for p in workflow_files(WORKFLOWS) for u in unpinned_actions(p.read_text())]
    assert not offenders, "\n".join(offenders)
    assert unpinned_actions("      - uses: actions/checkout@v4\n") == ["- uses: actions/checkout@v4"]
    assert unpinned_actions(f"      - uses: actions/checkout@{'0' * 40}\n"), "a SHA without the version named"
