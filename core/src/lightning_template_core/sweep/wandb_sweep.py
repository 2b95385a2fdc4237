"""The W&B backend: create a W&B sweep from the same file and run agents on this machine.

W&B's server chooses the parameters (grid, random, bayes) and its hyperband early
termination; its agent starts each trial with the file's ``command``. Nothing here
runs without the server: offline, ``sweep <config> --check`` validates the file.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

from lightning_template_core._command_line.optional_packages import require
from lightning_template_core._errors import UserError
from lightning_template_core.sweep.spec import SweepSpec


def wandb_config(spec: SweepSpec, extra: list[str]) -> dict[str, Any]:
    """The sweep config to send: the file, with the command-line overrides added as constants."""
    if "command" not in spec.raw:
        raise UserError(
            f"{spec.path} has no command: W&B's default passes --key=value flags, which Hydra rejects. Add"
            " command: [${env}, ${interpreter}, -m, <package>.fit, ${args_no_hyphens}]."
        )
    config = copy.deepcopy(dict(spec.raw))
    for text in extra:
        if "=" not in text:
            raise UserError(f"The override {text!r} cannot be passed to W&B's agent: give key=value overrides only.")
        name, value = text.split("=", 1)  # the agent writes name=value back: "+name" stays "+name"
        config["parameters"][name] = {"value": value}
    return config


def run_wandb_sweep(
    spec: SweepSpec,
    extra: list[str],
    count: int | None,
    project: str | None,
    entity: str | None,
    sweep_id: str | None,
) -> None:
    """Create the sweep (or join ``sweep_id``) and run one agent here for ``count`` trials (0: none)."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        raise UserError(
            f"WANDB_MODE={os.environ['WANDB_MODE']}: W&B sweeps need the W&B server (it picks every trial's"
            " parameters). Unset WANDB_MODE and run `wandb login`, use the local backend (--backend optuna),"
            " or check the file offline with --check."
        )
    require("wandb", "sweep --backend wandb", "run the sweep locally with --backend optuna")
    import wandb

    # the agent runs `${interpreter}` = `python` from PATH: make it this environment's
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    try:
        if sweep_id is None:
            sweep_id = wandb.sweep(wandb_config(spec, extra), project=project, entity=entity)
        print(f"More agents, on this or other machines: wandb agent {_qualified(sweep_id, project, entity)}")
        if count == 0:  # created only: the agents run elsewhere (one per GPU: docs/sweep.md)
            return
        wandb.agent(sweep_id, count=count, project=project, entity=entity)
    except UserError:
        raise
    except Exception as err:  # wandb raises its own types for login, network and config problems
        raise UserError(
            f"W&B refused the sweep: {type(err).__name__}: {str(err)[:300]}. W&B sweeps run on the W&B server:"
            " log in (`wandb login` or WANDB_API_KEY), check --project/--entity, or run the sweep locally with"
            " --backend optuna."
        ) from err


def _qualified(sweep_id: str, project: str | None, entity: str | None) -> str:
    return "/".join(part for part in (entity, project, sweep_id) if part) if project else sweep_id
