"""A run continues on the data it started on: what selects its samples and the files they come from, in every
checkpoint, checked when a run continues from one.

The settings of ``data`` that choose the samples (the data set, its seed, split and fold,
sizes, vocabulary, ...) and the identity of the files (``_files/source_identity.py``) are
saved at the first checkpoint and compared at every continuation. Another fold, another
folder of the same size (class folders swapped), a corpus rewritten: refused, naming what
differs, unless ``continue_on_other_data=true`` says it is meant (the run's provenance keeps
that command line). Settings that only decide how batches are cut or loaded are not part of it.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import DictConfig, OmegaConf

from lightning_template_core._errors import UserError
from lightning_template_core._files.source_identity import source_identity
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)

KEY = "data_identity"
# data settings that decide how the global batch is cut, loaded or cached, not which samples the run sees
NOT_IDENTITY = frozenset(
    (
        "global_batch_size",
        "micro_batch_size",
        "eval_batch_size",
        "global_batch_tokens",
        "micro_batch_tokens",
        "num_workers",
        "pin_memory",
        "on_device",
        "cache_dir",
        "download",
        "root",  # the files themselves are compared, wherever they lie
        "shuffle",
    )
)
SHOWN = 3  # differing files named in the refusal


class DataIdentity(Callback):
    """Saves the data's identity in each checkpoint and refuses to continue a run on other data."""

    def __init__(self, data: DictConfig, allow_other_data: bool = False) -> None:
        resolved = OmegaConf.to_container(data, resolve=True)
        self.settings = {key: value for key, value in resolved.items() if key not in NOT_IDENTITY}
        self.allow_other_data = allow_other_data
        self._files: dict[str, str] | None = None

    def identity(self, trainer: L.Trainer) -> dict[str, Any]:
        if self._files is None:
            datamodule = trainer.datamodule
            files = datamodule.source_files() if hasattr(datamodule, "source_files") else []
            self._files = source_identity(datamodule.source_root(), files) if files else {}
        return {"settings": self.settings, "files": self._files}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = self.identity(trainer)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(KEY)
        if saved is None or trainer.state.fn != TrainerFn.FITTING:  # older checkpoints; evaluating other data is fine
            return
        differences = differing(saved, self.identity(trainer))
        if not differences:
            return
        what = "; ".join(differences)
        if self.allow_other_data:
            log.warning(f"Continuing on other data than the checkpoint's, as continue_on_other_data=true says: {what}.")
            return
        raise UserError(
            f"The checkpoint {trainer.ckpt_path} was trained on other data than this run would continue on: {what}."
            " Continue with the data it started on, start a new run (another hydra.run.dir), or, if this is meant"
            " (fine-tuning on new data), add continue_on_other_data=true. Nothing was changed."
        )


def differing(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two identities, as the user would fix it."""
    found = []
    old, new = saved.get("settings", {}), current.get("settings", {})
    for key in sorted(old.keys() | new.keys()):
        if old.get(key, "<unset>") != new.get(key, "<unset>"):
            found.append(f"data.{key} was {old.get(key, '<unset>')!r}, now {new.get(key, '<unset>')!r}")
    old_files, new_files = saved.get("files", {}), current.get("files", {})
    changed = sorted(name for name in old_files.keys() | new_files.keys() if old_files.get(name) != new_files.get(name))
    if changed:
        named = ", ".join(_file_change(name, old_files, new_files) for name in changed[:SHOWN])
        more = f" and {len(changed) - SHOWN} more" if len(changed) > SHOWN else ""
        found.append(f"{len(changed)} of the data's files differ under data.root ({named}{more})")
    return found


def _file_change(name: str, old: dict[str, str], new: dict[str, str]) -> str:
    if name not in new:
        return f"{name} is gone"
    if name not in old:
        return f"{name} is new"
    return f"{name} changed"
