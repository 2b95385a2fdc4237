"""Where the Hydra configs live, and the decorator that makes a Hydra command out of a function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from lightning_template_core._command_line.compose import ConfigCheck, check_command_line
from lightning_template_core._command_line.config_dirs import config_dirs, find_config, primary_config_dir
from lightning_template_core._command_line.settings import check_settings
from lightning_template_core._errors import report_user_errors
from lightning_template_core._secrets import mask_output

# The project's configs folder (experiments, data, models, sweeps), which Hydra is given; the core's shared configs
# come after it on the search path (config_dirs.py).
CONFIG_DIR = primary_config_dir()


def hydra_command(
    config_name: str,
    argv: Callable[[list[str]], list[str]] | None = None,
    check: ConfigCheck | None = check_settings,
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """``@hydra.main`` on ``configs/<config_name>.yaml`` with user errors reported without a traceback.

    The configs are the project's (registered by its entry point; ``LIGHTNING_TEMPLATE_CONFIGS``
    names another folder) and, after them, the core's shared ones. ``argv``, if given,
    rewrites the command line's arguments before Hydra reads them (the commands that
    use a checkpoint add its run's overrides). Before Hydra runs, the command line is
    composed and ``check``-ed (:mod:`lightning_template_core._command_line.compose`), so a mistake in
    it exits with status 2 before the run directory exists.
    """

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        if find_config(f"{config_name}.yaml") is None:
            raise SystemExit(
                f"Error: no {config_name}.yaml in {', '.join(map(str, config_dirs()))}. Reinstall"
                " lightning-template-core and the project (make install), or set LIGHTNING_TEMPLATE_CONFIGS to the"
                " project's configs folder."
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
            mask_output(sys.argv[1:])  # a password in a URL given here is never printed, by us or a library
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
