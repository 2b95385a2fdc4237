"""Checkpoint files that are either complete or absent, on any filesystem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH

from lightning_template_core._files.atomic import atomic_write


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` complete or not at all (:func:`atomic_write`).

    Lightning's own save writes the temporary file in ``$TMPDIR`` and moves it, which
    is a copy, not a rename, when the run directory is on another filesystem.
    """
    atomic_write(path, lambda handle: torch.save(obj, handle))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with :func:`atomic_torch_save` for local paths (remote ones unchanged)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        protocol = get_filesystem(path).protocol
        if storage_options is not None or "file" not in (protocol if isinstance(protocol, tuple) else (protocol,)):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, path)
