"""The metrics a run's model logs at each validation, known from its config before anything is built.

Each task's LightningModule declares them in ``VALIDATION_METRICS``, so a ``monitor`` or a
sweep's metric that the model never logs is refused before training, not after the first
validation (or, in a sweep, after a whole trial).
"""

from __future__ import annotations

import importlib

from omegaconf import DictConfig, OmegaConf

DECLARATION = "VALIDATION_METRICS"


def validation_metrics(cfg: DictConfig) -> tuple[str, ...] | None:
    """The names ``cfg.model._target_``'s class logs at each validation; None when it does not say.

    Only the class imported, nothing built and no data read. Only a declaration on the
    class itself counts: a subclass (a user's own module) may log other metrics, so it is
    unknown rather than wrongly refused.
    """
    target = OmegaConf.select(cfg, "model._target_")
    if not isinstance(target, str) or "." not in target:
        return None
    module_name, _, class_name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None  # building the model reports the target that does not import
    cls = getattr(module, class_name, None)
    declared = vars(cls).get(DECLARATION) if isinstance(cls, type) else None
    return tuple(declared) if declared is not None else None
