"""Modules that moved, and the error that names their new place.

The core left the template's package ``lightning_template`` for a library of its own,
``lightning_template_core`` (its modules private by name, the task contract at its top
level). A user's config may still say ``_target_: lightning_template.callbacks...``, a
script ``from lightning_template.runs.assembly import build_run``, a shell ``python -m
lightning_template.fit``: such an import fails with a ModuleNotFoundError that names the
new place (through the settings check, as one paragraph), not with a bare "No module named".
Standard library only.
"""

from __future__ import annotations

import importlib.abc
import sys

OLD_PACKAGE = "lightning_template"
CORE = "lightning_template_core"
COMMANDS = ("fit", "tune", "sweep", "evaluate", "predict", "generate", "export", "verify")
LAYERS = ("batching", "checkpointing", "runs", "command_line", "callbacks", "training", "verification", "files", "nets")
# modules of the package before it was laid out by job -> where they are now
FLAT = {
    "config": "_command_line.hydra_command",
    "settings": "_command_line.settings",
    "summary": "_command_line.tables",
    "assembly": "_runs.assembly",
    "trained": "_runs.trained",
    "inference": "_runs.task_inference",
    "evaluation": "_runs.split_metrics",
    "lr_scaling": "_training.lr_scaling",
    "data_description": "_batching.data_description",
    "monitor_history": "_callbacks.monitor_history",
    "rank_agreement": "_callbacks.rank_agreement",
    "continuing_csv_logger": "_callbacks.continuing_csv_logger",
    "atomic_files": "_files.atomic",
    "downloads": "_files.downloads",
    "text_files": "_files.text",
    "errors": "_errors",
    "moved": "_moved",
    "stop_before_training": "_stop_before_training",
}


def new_place(old: str, package: str = OLD_PACKAGE) -> str | None:
    """Where the module ``old`` (``<package>.<module>...``) is now, or None if it did not move."""
    head, _, rest = old.partition(".")
    first, _, tail = rest.partition(".")
    if head != package or not first:
        return None
    if first in COMMANDS:
        moved = first
    elif first in LAYERS:
        moved = f"_{first}"
    elif first in FLAT and not tail:
        moved = FLAT[first]
    else:
        return None
    return ".".join(part for part in (CORE, moved, tail) if part)


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Consulted only after the normal finders found nothing: an old name fails with its new place."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(self, fullname, path, target=None):
        place = new_place(fullname, self.package)
        if place is not None:
            raise ModuleNotFoundError(
                f"{fullname} moved to {place} (lightning-template-core): change the import, the config's _target_"
                f" or the command (python -m {CORE}.<command>, or the console script) to it.",
                name=fullname,
            )
        return None


def install(package: str = OLD_PACKAGE) -> None:
    """Name the new place of the core's old modules under ``package`` when they are imported."""
    if not any(isinstance(f, MovedModuleFinder) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder(package))
