"""Where the Hydra configs live, and the decorator that makes a Hydra command out of a function."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from lightning_template.command_line.compose import ConfigCheck, check_command_line
from lightning_template.command_line.settings import check_settings
from lightning_template.errors import report_user_errors

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = Path(os.environ.get("LIGHTNING_TEMPLATE_CONFIGS", PROJECT_ROOT / "configs"))


def hydra_command(
    config_name: str,
    argv: Callable[[list[str]], list[str]] | None = None,
    check: ConfigCheck | None = check_settings,
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """``@hydra.main`` on ``configs/<config_name>.yaml`` with user errors reported without a traceback.

    The configs are read from the project checkout (the package is installed in
    editable mode); ``LIGHTNING_TEMPLATE_CONFIGS`` points elsewhere. ``argv``, if given,
    rewrites the command line's arguments before Hydra reads them (the commands that
    use a checkpoint add its run's overrides). Before Hydra runs, the command line is
    composed and ``check``-ed (:mod:`lightning_template.command_line.compose`), so a mistake in
    it exits with status 2 before the run directory exists.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        if not (CONFIG_DIR / f"{config_name}.yaml").is_file():
            raise SystemExit(
                f"Error: {CONFIG_DIR / f'{config_name}.yaml'} not found. Install the project in editable mode from"
                " its checkout (pip install -e .) or set LIGHTNING_TEMPLATE_CONFIGS to its configs folder."
            )
        main = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(
            report_user_errors(task)
        )

        def checked(arguments: list[str]) -> list[str]:
            """The arguments as Hydra will read them, composed and checked (a mistake exits with status 2)."""
            if argv is not None:
                arguments = report_user_errors(argv)(arguments)
            report_user_errors(check_command_line)(str(CONFIG_DIR), config_name, arguments, check)
            return arguments

        @functools.wraps(main)
        def checked_main() -> Any:
            sys.argv[1:] = checked(sys.argv[1:])
            return main()

        checked_main.check_arguments = checked  # what runs before Hydra, alone (tests call it in-process)
        return checked_main

    return decorate


def compose_fit(overrides: Sequence[str] = ()) -> DictConfig:
    """The ``fit`` config these overrides give, as Hydra composes it for a run (Hydra's own keys included)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("fit", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def compose_job(overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """The ``fit`` config of these overrides as a run in ``output_dir`` sees it, Hydra's own keys set aside: for
    building a run in this process (benchmarks, tests) as the command would."""
    cfg = compose_fit(overrides)
    cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    return job
