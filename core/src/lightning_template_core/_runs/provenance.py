"""What code, environment and command trained a run: ``provenance.json`` in its directory, one entry per attempt.

A run that is killed and continued may continue on other code or other machines, so each
attempt that starts training adds an entry (the first is the run's start). An uncommitted
change is kept beside it as ``provenance-<attempt>.diff``: a commit alone would not say
what ran.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning
import torch

import lightning_template_core
from lightning_template_core._command_line.hydra_command import CONFIG_DIR
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._secrets import mask

PROVENANCE = "provenance.json"
# the project checkout whose code a run trains: the folder that holds its configs
PROJECT_ROOT = CONFIG_DIR.parent


def _git(*arguments: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *arguments], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def code_state() -> dict[str, Any]:
    """The checkout's commit, branch and uncommitted changes (``diff``: text), or why there is none."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "why": f"{PROJECT_ROOT} is not a git checkout (or git is not installed)"}
    status = _git("status", "--porcelain") or ""
    return {
        "commit": commit.strip(),
        "branch": (_git("rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None,
        "dirty": bool(status.strip()),
        "untracked": [line[3:] for line in status.splitlines() if line.startswith("??")],
        "diff": _git("diff", "HEAD") or "",
    }


def record_attempt(run_dir: Path, world_size: int, resumed_step: int) -> dict[str, Any]:
    """Add this attempt to ``<run_dir>/provenance.json`` (and its diff, if any); return the entry."""
    path = run_dir / PROVENANCE
    attempts = json.loads(path.read_text())["attempts"] if path.is_file() else []
    code = code_state()
    diff = code.pop("diff", "")
    if diff:
        diff_name = f"provenance-{len(attempts)}.diff"
        atomic_write_text(run_dir / diff_name, diff)
        code["diff_file"] = diff_name
    entry = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "from_step": resumed_step,
        "command": mask(shlex.join([Path(sys.argv[0]).stem, *sys.argv[1:]])),
        "host": socket.gethostname(),
        "world_size": world_size,
        "visible_gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),  # None: every GPU (a sweep gives each trial its own)
        "code": code,
        "versions": {
            "python": platform.python_version(),
            "lightning-template-core": lightning_template_core.__version__,
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "cuda": torch.version.cuda,
        },
    }
    atomic_write_text(path, json.dumps({"attempts": [*attempts, entry]}, indent=2) + "\n")
    return entry


def describe_code(run_dir: Path) -> str | None:
    """One line on the code the run's last attempt ran (for the commands that use a trained run)."""
    path = run_dir / PROVENANCE
    if not path.is_file():
        return None
    code = json.loads(path.read_text())["attempts"][-1]["code"]
    if code.get("commit") is None:
        return "not from a git checkout"
    dirty = f", with uncommitted changes ({code['diff_file']})" if code.get("diff_file") else ""
    dirty = dirty or (", with untracked files" if code.get("dirty") else "")
    return f"{code['commit'][:12]} ({code.get('branch')}){dirty}"
