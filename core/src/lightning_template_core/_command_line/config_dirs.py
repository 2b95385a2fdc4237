"""Where the commands' Hydra configs come from: the project's own folder first, then the core's shared configs.

A project (the template's checkout, a baked project) registers its configs folder under the
entry point group ``lightning_template_core.configs`` (in its ``pyproject.toml``); the core
never imports a project by path. Hydra searches the project's folder first, so a project's
file shadows the core's of the same name (``trainer/default.yaml``, say), and the core's
folder after it (:mod:`hydra_plugins.lightning_template_core_configs`). Standard library only.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "lightning_template_core.configs"
# the configs every project shares: the commands' root configs, trainer, logger, callbacks, hydra, paths, debug
CORE_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
OVERRIDE = "LIGHTNING_TEMPLATE_CONFIGS"  # a project's configs folder, instead of the registered ones


def project_config_dirs() -> list[Path]:
    """The project's config folder: ``$LIGHTNING_TEMPLATE_CONFIGS``, else the registered project's.

    Where several projects are installed in one environment, the one whose checkout holds the
    working directory; one project's configs never mix with another's.
    """
    if os.environ.get(OVERRIDE):
        return [Path(os.environ[OVERRIDE]).resolve()]
    registered = registered_projects()
    if len(registered) <= 1:
        return list(registered.values())
    here = Path.cwd().resolve()
    inside = [folder for folder in registered.values() if here.is_relative_to(folder.parent)]
    if inside:
        return [max(inside, key=lambda folder: len(folder.parts))]
    raise SystemExit(
        f"Error: several projects are installed here ({', '.join(sorted(registered))}) and the working directory"
        f" {here} is in none of their checkouts. Run the command in the project's folder, or set {OVERRIDE} to its"
        " configs folder."
    )


def registered_projects() -> dict[str, Path]:
    """Every installed project's configs folder, by the name it registers.

    A registration whose module is gone (metadata left behind, or a project not importable in
    this environment) is passed over where another project loads; alone, it is an error.
    """
    loaded, failures = {}, []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded[entry.name] = Path(entry.load()).resolve()
        except (ImportError, AttributeError) as err:
            failures.append(
                f"Error: the project {entry.name!r} registers its configs as {entry.value!r}, which cannot be loaded"
                f" ({err}). Reinstall the project (make install, or pip install -e . in its checkout)."
            )
    if failures and not loaded:
        raise SystemExit(failures[0])
    return loaded


def config_dirs() -> list[Path]:
    """Every folder Hydra searches, in its order: the projects' folders, then the core's."""
    return [*project_config_dirs(), CORE_CONFIGS]


def primary_config_dir() -> Path:
    """The folder a command gives Hydra as its own: the project's, or the core's where none is installed."""
    return next(iter(project_config_dirs()), CORE_CONFIGS)


def find_config(relative: str) -> Path | None:
    """The file (or folder) ``relative`` as Hydra finds it: in the first config folder that has it."""
    return next((folder / relative for folder in config_dirs() if (folder / relative).exists()), None)


def group_options(group: str) -> list[str]:
    """The names of a config group's options across every config folder (``experiment`` -> ``cnn``, ``lm``, ...)."""
    return sorted({path.stem for folder in config_dirs() for path in (folder / group).glob("*.yaml")})
