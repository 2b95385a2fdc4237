"""A command's overrides, composed and checked before Hydra starts the run.

Hydra reports its own errors (an unknown experiment, a misspelled key) with exit
status 1 and, for a misspelled key, suggests ``+key=value``, which then fails in a
constructor. Composing the config here first turns each of them into one paragraph
with exit status 2 and the real fix, and lets :mod:`lightning_template_core._command_line.settings` check
the values before anything is built or written (Hydra has not made the run directory
yet). Each job of a ``--multirun`` is checked the same way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightning_template_core._command_line.config_dirs import config_dirs
from lightning_template_core._errors import UserError

# A check of the composed config, given the config the same group choices give without the value overrides
# (the shipped defaults) and the keys the command line set.
ConfigCheck = Callable[[DictConfig, DictConfig, list[str]], None]

# Hydra flags after which Hydra prints something or runs another way: it handles those itself.
_HYDRA_OWN = (
    "help",
    "hydra_help",
    "cfg",
    "info",
    "shell_completion",
    "experimental_rerun",
    "config_path",
    "config_dir",
)


def check_command_line(config_dir: str, config_name: str, argv: list[str], check: ConfigCheck | None) -> None:
    """Compose ``config_name`` from ``argv`` (every job of a multirun) and run ``check``; a UserError if wrong."""
    args = get_args_parser().parse_args(argv)
    if any(getattr(args, flag, None) for flag in _HYDRA_OWN):
        return
    name = args.config_name or config_name
    for overrides in _jobs(args.overrides, args.multirun):
        parsed = _parse(overrides)
        _check_group_choices(parsed, config_dir)
        chosen = [
            text for text, override in zip(overrides, parsed, strict=True) if _keeps_shipped(override, config_dir)
        ]
        cfg = _compose(config_dir, name, overrides)
        if check is not None:
            shipped = _compose(config_dir, name, chosen)
            try:
                check(cfg, shipped, [o.key_or_group for o in parsed if not _keeps_shipped(o, config_dir)])
            except OmegaConfBaseException as err:  # an interpolation the user wrote that does not resolve
                raise UserError(f"The config could not be read: {err}. Check the overrides that use ${{...}}.") from err
            finally:
                GlobalHydra.instance().clear()


def _parse(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides=overrides)
    except OverrideParseException as err:
        raise UserError(
            f"An override is not valid Hydra syntax: {str(err).splitlines()[0]}. Overrides are key=value (quote"
            " values with spaces or commas: 'key=\"a, b\"'); see Hydra's override grammar."
        ) from err


def _check_group_choices(parsed: list[Override], config_dir: str) -> None:
    """A UserError for ``group=null``, which Hydra meets with a traceback: a group is left out with ``~group``."""
    for override in parsed:
        key = override.key_or_group
        if override.value() is None and not override.is_delete() and _is_group(key, config_dir):
            raise UserError(
                f"{key}=null: {key} is a config group, which takes the name of one of its files in configs/{key}/"
                f" (or a list of them). To run without it, write ~{key} instead."
            )


def _jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The overrides of each job: one job, or one per combination of a ``--multirun``'s sweeps."""
    if not multirun:
        return [overrides]
    batches = BasicSweeper.split_arguments(_parse(overrides), None)
    return [job for batch in batches for job in batch]


def _keeps_shipped(override: Override, config_dir: str) -> bool:
    """Whether an override chooses what is composed (a group, a deletion, Hydra's own) rather than a value."""
    key = override.key_or_group
    return override.is_delete() or key.startswith("hydra") or "/" in key or _is_group(key, config_dir)


def _is_group(key: str, config_dir: str) -> bool:
    """Whether ``key`` names a config group (a folder of configs/), not a setting."""
    return "." not in key and any((folder / key).is_dir() for folder in config_dirs())


def _compose(config_dir: str, name: str, overrides: list[str]) -> DictConfig:
    """The config Hydra would compose, with Hydra's own node set so that ``${hydra:...}`` resolves."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    except OverrideParseException:
        raise
    except MissingConfigException as err:
        raise _missing_option(err) from err
    except HydraException as err:
        raise _composition_error(err, config_dir, name, overrides) from err
    HydraConfig.instance().set_config(cfg)
    return cfg


def _missing_option(err: MissingConfigException) -> UserError:
    match = re.search(r"Could not find '([^']+)/([^'/]+)'", str(err))
    options = [option for option in (err.options or []) if not option.startswith("_")]
    if match is None:
        return UserError(f"A config file is missing: {str(err).splitlines()[0]}.")
    group, option = match.groups()
    near = difflib.get_close_matches(option, options, n=1)
    hint = f" Did you mean {group}={near[0]}?" if near else ""
    return UserError(
        f"{group}={option} is not an option: there is no configs/{group}/{option}.yaml.{hint} The options are"
        f" {', '.join(options)}."
    )


def _composition_error(err: HydraException, config_dir: str, name: str, overrides: list[str]) -> UserError:
    message = str(err)
    unknown = re.search(r"Could not override '([^']+)'", message)
    if unknown is None:
        lines = " ".join(line.strip() for line in message.splitlines() if line.strip())
        return UserError(f"The overrides could not be composed into a config: {lines}")
    key = unknown.group(1)
    others = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != key]
    try:
        known = sorted(_leaf_keys(_compose(config_dir, name, others)))
    except UserError:
        known = []
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
    hint = f" Did you mean {near[0]}?" if near else ""
    return UserError(
        f"{key} is not a setting of this config.{hint} A misspelled key is the usual cause (`fit --cfg job` with"
        f" the same overrides prints every setting). Add a new key with +{key}=... only where the code reads"
        " it (a new argument of your own _target_)."
    )


def _leaf_keys(cfg: DictConfig) -> list[str]:
    """Every setting's dotted key (Hydra's own left out)."""

    def walk(node: Any, prefix: str) -> Iterable[str]:
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)  # type: ignore[union-attr]
    return list(walk(container, ""))
