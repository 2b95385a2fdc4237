"""The metrics a run's model logs, known from its config before anything is built.

Each task's LightningModule declares them: ``VALIDATION_METRICS`` at each validation,
``TRAINING_METRICS`` while it trains (a class's own and its bases'). So a ``monitor`` or a
sweep's metric that the model never logs is refused before training, not after the first
validation (or, in a sweep, after a whole trial).
"""

from __future__ import annotations

import importlib
import inspect

from omegaconf import DictConfig, OmegaConf

DECLARATION = "VALIDATION_METRICS"
TRAINING_DECLARATION = "TRAINING_METRICS"


def _model_class(cfg: DictConfig) -> type | None:
    """The class ``cfg.model._target_`` names, imported (nothing built, no data read); None if unknown."""
    target = OmegaConf.select(cfg, "model._target_")
    if not isinstance(target, str) or "." not in target:
        return None
    module_name, _, class_name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None  # building the model reports the target that does not import
    cls = getattr(module, class_name, None)
    return cls if isinstance(cls, type) else None


def validation_metrics(cfg: DictConfig) -> tuple[str, ...] | None:
    """The names ``cfg.model._target_``'s class logs at each validation; None when it does not say.

    Only a declaration on the class itself counts: a subclass (a user's own module) may log
    other metrics, so it is unknown rather than wrongly refused.
    """
    declared = vars(cls).get(DECLARATION) if (cls := _model_class(cfg)) is not None else None
    return tuple(declared) if declared is not None else None


def training_metrics(cfg: DictConfig) -> tuple[str, ...] | None:
    """The names the class logs while training (its own and its bases' declarations); None when it does not say
    (the same rule as :func:`validation_metrics`: the class itself declares its validation metrics)."""
    if validation_metrics(cfg) is None:
        return None
    classes = inspect.getmro(_model_class(cfg))
    return tuple(name for klass in classes for name in vars(klass).get(TRAINING_DECLARATION, ()))
