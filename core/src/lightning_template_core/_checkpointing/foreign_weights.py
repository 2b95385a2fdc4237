"""Refuse a checkpoint of another model than the one being built, naming the experiment that wrote it.

Without this, ``fit experiment=<a task> ckpt_path=<another task's checkpoint>`` ends in torch's wall of
missing and unexpected keys, and ``evaluate`` of another task's checkpoint placed in a run directory in a
traceback from the model's constructor; the user needs to hear which experiment wrote the file. Each
checkpoint records it (``written_by``: the experiment and the model's ``_target_``); a checkpoint without
that record is named by the ``config.yaml`` of the run directory it lies in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.utils import get_object
from torch import nn

from lightning_template_core._errors import UserError

ORIGIN_KEY = "written_by"


def origin_of(ckpt_path: Path, checkpoint: Mapping[str, Any] | None = None) -> str:
    """``experiment=<name>`` of the run that wrote ``ckpt_path``: its own record, else its run directory's."""
    recorded = (checkpoint or {}).get(ORIGIN_KEY) or {}
    if recorded.get("experiment"):
        return f"experiment={recorded['experiment']}"
    for folder in list(ckpt_path.expanduser().absolute().parents)[:3]:
        config = folder / "config.yaml"
        if config.is_file():
            try:
                name = (yaml.safe_load(config.read_text()) or {}).get("experiment_name")
            except (OSError, yaml.YAMLError, AttributeError):
                break
            return f"experiment={name}" if name else f"the run in {folder}"
    return "an unknown run (no config.yaml beside it)"


def _same_class(target: str, other: str) -> bool:
    """Whether two ``_target_`` names are one class (a package may re-export a module's class)."""
    if target == other:
        return True
    try:
        return get_object(target) is get_object(other)
    except Exception:  # a name that no longer imports is another class
        return False


def refuse_another_model(
    checkpoint: Mapping[str, Any], model_target: str, ckpt_path: Path, fix: Callable[[], str]
) -> None:
    """A UserError if ``checkpoint`` records another model class than ``model_target`` (before one is built);
    ``fix()`` says what to do."""
    recorded = checkpoint.get(ORIGIN_KEY) or {}
    if recorded.get("model") is not None and not _same_class(recorded["model"], model_target):
        raise UserError(
            f"ckpt_path={ckpt_path} was written by {origin_of(ckpt_path, checkpoint)}, whose model is"
            f" {recorded['model']}; this command builds {model_target}. {fix()}"
        )


def refuse_foreign_weights(
    checkpoint: Mapping[str, Any], model: nn.Module, ckpt_path: Path, experiment: str | None
) -> None:
    """A UserError if ``checkpoint``'s weights are not a state of ``model``: another model, other keys or shapes."""
    this = f"experiment={experiment}" if experiment else "this run"
    origin = origin_of(ckpt_path, checkpoint)
    fix = f"Continue that run with its own settings ({origin} and its overrides), or drop ckpt_path to start {this}"
    refuse_another_model(
        checkpoint, f"{type(model).__module__}.{type(model).__qualname__}", ckpt_path, lambda: f"{fix} from scratch."
    )
    state: Mapping[str, torch.Tensor] = checkpoint["state_dict"]
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    reshaped = [key for key in own if key in state and tuple(state[key].shape) != tuple(own[key].shape)]
    if not (missing or unexpected or reshaped):
        return
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
        f" {fix} from scratch."
    )
