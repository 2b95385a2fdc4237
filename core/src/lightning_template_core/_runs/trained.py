"""A trained model from its checkpoint, configured as the run that trained it.

The commands that use a trained model (``evaluate``, ``predict``, ``generate``,
``export``) take ``ckpt_path=<file>`` and no ``experiment=``: the checkpoint's run
directory holds the overrides Hydra composed that run from (``.hydra/overrides.yaml``),
and :func:`with_run_overrides` puts them on the command line before the user's, so
Hydra composes the run's config again and the user's overrides (``trainer=ddp_cpu``,
``data.root=...``) go on top. The model is rebuilt from that config and from the data
description saved in the checkpoint's hyperparameters, so it needs no data, and the
checkpoint is read with ``weights_only=True``: tensors and plain data, no code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lightning_template_core._batching.data_description import DataDescription
from lightning_template_core._checkpointing.foreign_weights import (
    origin_of,
    refuse_another_model,
    refuse_foreign_weights,
)
from lightning_template_core._command_line.raw_overrides import key_of, value_of
from lightning_template_core._errors import UserError
from lightning_template_core._runs.run_record import HYDRA_FILES

SAVED_OVERRIDES = Path(HYDRA_FILES) / "overrides.yaml"


def _replaced(key: str, given: set[str]) -> bool:
    """Whether the user's overrides replace the run's ``key``: the same key, its group (``trainer=`` for
    ``trainer.devices``), or any at all when the user chose the experiment."""
    return "experiment" in given or any(key == g or key.startswith(f"{g}.") for g in given)


def run_dir_of(ckpt_path: Path) -> Path | None:
    """The run directory a checkpoint belongs to: the nearest folder above it holding the run's overrides."""
    for folder in list(ckpt_path.parents)[:3]:
        if (folder / SAVED_OVERRIDES).is_file():
            return folder
    return None


def _saved_overrides(path: Path) -> list[str]:
    """The overrides a run was composed from, as ``fit`` saved them; a damaged file is named."""
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        saved = err
    if not (isinstance(saved, list) and all(isinstance(item, str) for item in saved)):
        why = str(saved).splitlines()[0] if isinstance(saved, Exception) else "not a list of overrides"
        raise UserError(
            f"{path} is damaged ({why}): it should hold the overrides the run was trained with, one"
            " `- key=value` per line."
            " Restore it, or give the config by hand with experiment=<name>, the run's other overrides and"
            " hydra.run.dir=<where to write>."
        )
    return saved


def with_run_overrides(argv: list[str]) -> list[str]:
    """``argv`` with the checkpoint's run overrides before the user's, and that run's directory as the run dir.

    An override the user gives replaces the run's of the same key, and a group the user
    chooses (``trainer=cpu``) the run's overrides inside it (``trainer.devices=2``), so a
    DDP process, started with the rewritten command line, adds nothing twice;
    ``experiment=`` replaces them all (the user composes the config). Without a
    ``ckpt_path`` in a run directory nothing is added: the command then says what is wrong.
    """
    given = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    ckpt = value_of(given, "ckpt_path")
    run_dir = run_dir_of(Path(ckpt).expanduser().absolute()) if ckpt else None
    if run_dir is None:
        return argv
    keys = {key_of(arg) for arg in given}
    saved = _saved_overrides(run_dir / SAVED_OVERRIDES)
    added = [override for override in saved if not _replaced(key_of(override), keys)]
    if "hydra.run.dir" not in keys:
        added.append(f'hydra.run.dir="{run_dir}"')
    first = argv.index(given[0])
    return [*argv[:first], *added, *argv[first:]]


def read_checkpoint(ckpt_path: Any) -> dict[str, Any]:
    """The checkpoint at ``ckpt_path`` (tensors and plain data only), or a UserError saying what is wrong."""
    if not ckpt_path:
        raise UserError(
            "ckpt_path is not set: give the checkpoint to use, e.g. ckpt_path=<run dir>/checkpoints/last.ckpt."
        )
    path = Path(str(ckpt_path)).expanduser()
    if not path.is_file():
        raise UserError(
            f"ckpt_path={path} does not exist or is not a file. Give a checkpoint written by fit, e.g."
            " <run dir>/checkpoints/last.ckpt (its summary.json names the best one)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file it cannot read
        raise UserError(
            f"ckpt_path={path} could not be read as a checkpoint ({type(err).__name__}: {str(err)[:200]}). It may be"
            " truncated, or not a checkpoint at all: use another checkpoint of the run."
        ) from err
    if not isinstance(checkpoint, dict) or "data" not in checkpoint.get("hyper_parameters", {}):
        raise UserError(
            f"ckpt_path={path} is not a checkpoint written by fit (it holds no model hyperparameters with a data"
            " description): give one from <run dir>/checkpoints/."
        )
    return checkpoint


def _experiment_chosen() -> bool:
    """Whether the command line chose the experiment (the config is the user's, not the run directory's)."""
    return HydraConfig.initialized() and any(key_of(o) == "experiment" for o in HydraConfig.get().overrides.task)


def _check_run_config(cfg: DictConfig) -> None:
    """Refuse a config composed without the checkpoint's run (none found) unless ``experiment=`` chose one."""
    if not _experiment_chosen() and run_dir_of(Path(str(cfg.ckpt_path)).expanduser().absolute()) is None:
        raise UserError(
            f"ckpt_path={cfg.ckpt_path}: no run directory found above it (a folder holding {SAVED_OVERRIDES}, which"
            " fit writes), so the run's config is unknown. Keep the checkpoint in its run's checkpoints/ folder,"
            " or give the config by hand with experiment=<name> and hydra.run.dir=<where to write>."
        )


@dataclass
class TrainedModel:
    """A model with its checkpoint's weights, in eval mode, and what its outputs mean."""

    model: L.LightningModule
    description: DataDescription
    ckpt_path: Path


def open_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """The checkpoint of ``cfg.ckpt_path``, once its run's config is known to be ``cfg`` and of its model."""
    checkpoint = read_checkpoint(cfg.get("ckpt_path"))
    _check_run_config(cfg)
    ckpt_path = Path(str(cfg.ckpt_path))
    refuse_another_model(checkpoint, cfg.model._target_, ckpt_path, lambda: _another_model_fix(cfg, ckpt_path))
    return checkpoint


def load_trained(cfg: DictConfig) -> TrainedModel:
    """The model ``cfg.model`` builds, with the weights and data description of ``cfg.ckpt_path``.

    A checkpoint whose weights do not fit that model (another task's, another network)
    is refused, naming the mismatch and the run that wrote it.
    """
    checkpoint = open_checkpoint(cfg)
    ckpt_path = Path(str(cfg.ckpt_path))
    description = DataDescription.of(checkpoint["hyper_parameters"]["data"])
    model = instantiate(OmegaConf.to_container(cfg.model, resolve=True), data=description.as_dict(), _convert_="all")
    state = checkpoint["state_dict"]
    dtype = next((value.dtype for value in state.values() if value.is_floating_point()), None)
    if dtype is not None:
        model.to(dtype)  # a float64 run stays float64
    experiment = OmegaConf.select(cfg, "experiment_name", throw_on_resolution_failure=False)
    refuse_foreign_weights(checkpoint, model, ckpt_path, experiment)
    model.load_state_dict(state)
    return TrainedModel(model.eval(), description, ckpt_path)


def _another_model_fix(cfg: DictConfig, ckpt_path: Path) -> str:
    """What to do when the checkpoint's model is not the one ``cfg`` builds: where that config came from."""
    experiment = f"experiment={cfg.get('experiment_name')}"
    if origin_of(ckpt_path) != experiment:  # not the run directory's config, nor its experiment: the user's
        return f"The config given ({experiment}) is another: drop experiment= to use the checkpoint's run's own."
    return (
        f"It was moved or copied here: the run directory it lies in ({run_dir_of(ckpt_path.expanduser().absolute())})"
        f" is of {experiment}. Use the checkpoint from its own run directory, or give its experiment and overrides"
        " on the command line (experiment=... replaces the directory's)."
    )
