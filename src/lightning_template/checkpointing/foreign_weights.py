"""Refuse a checkpoint whose weights do not fit the model being built, naming the run it came from.

Without this, ``fit experiment=<a task> ckpt_path=<another task's checkpoint>`` ends in torch's wall of
missing and unexpected keys; the user needs to hear which experiment wrote the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import yaml
from torch import nn

from lightning_template.errors import UserError


def origin_of(ckpt_path: Path) -> str:
    """``experiment=<name>`` of the run that wrote ``ckpt_path`` (its run directory's config.yaml), if known."""
    for folder in list(ckpt_path.expanduser().absolute().parents)[:3]:
        config = folder / "config.yaml"
        if config.is_file():
            try:
                name = (yaml.safe_load(config.read_text()) or {}).get("experiment_name")
            except (OSError, yaml.YAMLError, AttributeError):
                break
            return f"experiment={name}" if name else f"the run in {folder}"
    return "an unknown run (no config.yaml beside it)"


def refuse_foreign_weights(
    state: Mapping[str, torch.Tensor], model: nn.Module, ckpt_path: Path, experiment: str | None
) -> None:
    """A UserError if ``state`` (a checkpoint's state_dict) is not a state of ``model``: other keys or shapes."""
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    reshaped = [key for key in own if key in state and tuple(state[key].shape) != tuple(own[key].shape)]
    if not (missing or unexpected or reshaped):
        return
    this = f"experiment={experiment}" if experiment else "this run"
    origin = origin_of(ckpt_path)
    if missing or unexpected:
        what = (
            f"{len(missing)} of this model's weights are not in it (e.g. {', '.join(missing[:2]) or '-'}) and"
            f" {len(unexpected)} of its are not in this model (e.g. {', '.join(unexpected[:2]) or '-'})"
        )
    else:
        key = reshaped[0]
        what = (
            f"{len(reshaped)} weights differ in shape, e.g. {key}: {tuple(state[key].shape)} in the checkpoint,"
            f" {tuple(own[key].shape)} here (the model.net.* settings differ from that run's)"
        )
    raise UserError(
        f"ckpt_path={ckpt_path} was written by {origin}, and its weights do not fit the model of {this}: {what}."
        f" Continue that run with its own settings ({origin} and its overrides), or drop ckpt_path to start"
        f" {this} from scratch."
    )
