"""Modules that moved when the package was laid out by job, and the error that names their new place.

A user's config may still say ``_target_: lightning_template.continuing_csv_logger...``, a
script ``from lightning_template.config import compose_fit``: such an import fails with a
ModuleNotFoundError that names the module's new place (and, through the settings check, as
one paragraph), not with a bare "No module named".
"""

from __future__ import annotations

import importlib.abc
import sys

PACKAGE = __name__.rsplit(".", 1)[0]

# old module (under the package) -> where it is now
MOVED = {
    "config": "command_line.hydra_command",
    "settings": "command_line.settings",
    "summary": "command_line.tables",
    "assembly": "runs.assembly",
    "trained": "runs.trained",
    "inference": "runs.task_inference",
    "evaluation": "runs.split_metrics",
    "lr_scaling": "runs.lr_scaling",
    "data_description": "batching.data_description",
    "monitor_history": "callbacks.monitor_history",
    "rank_agreement": "callbacks.rank_agreement",
    "continuing_csv_logger": "callbacks.continuing_csv_logger",
    "atomic_files": "files.atomic",
    "downloads": "files.downloads",
    "text_files": "files.text",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Consulted only after the normal finders found nothing: an old name fails with its new place."""

    def find_spec(self, fullname, path, target=None):
        package, _, name = fullname.partition(".")
        if package == PACKAGE and name in MOVED:
            raise ModuleNotFoundError(
                f"{fullname} moved to {PACKAGE}.{MOVED[name]}: change the import (or a config's _target_) to it.",
                name=fullname,
            )
        return None


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
