"""The project's extras: which setting needs which optional package, refused by name before anything runs.

The trackers and ONNX are not installed with the project (each pulls in a large tree of its
own); a setting that needs one is refused with the extra that installs it, not an
ImportError from deep inside a logger.
"""

from __future__ import annotations

import importlib.util

from omegaconf import DictConfig

from lightning_template_core._errors import UserError

# extra -> the modules it provides, each a tuple of alternatives (Lightning's TensorBoard logger takes either)
EXTRAS: dict[str, tuple[tuple[str, ...], ...]] = {
    "wandb": (("wandb",),),
    "mlflow": (("mlflow",),),
    "tensorboard": (("tensorboard", "tensorboardX"),),
    "onnx": (("onnx",), ("onnxscript",)),  # torch's ONNX exporter needs both
}
LOGGER_EXTRAS = {"WandbLogger": "wandb", "MLFlowLogger": "mlflow", "TensorBoardLogger": "tensorboard"}


def missing_modules(extra: str) -> list[str]:
    return [group[0] for group in EXTRAS[extra] if not any(importlib.util.find_spec(name) for name in group)]


def require(extra: str, needed_by: str, instead: str) -> None:
    """A UserError naming the extra to install when a module of ``extra`` is missing."""
    missing = missing_modules(extra)
    if missing:
        raise UserError(
            f"{needed_by} needs {' and '.join(missing)}, not installed here: pip install -e '.[{extra}]' in the"
            f" project (or pip install {' '.join(missing)}), or {instead}."
        )


def check_logger_packages(cfg: DictConfig) -> None:
    """Each configured logger's package is installed."""
    loggers = cfg.get("logger")
    for name, entry in (loggers or {}).items():
        extra = LOGGER_EXTRAS.get(str(entry.get("_target_", "")).rsplit(".", 1)[-1]) if entry else None
        if extra:
            require(extra, f"logger.{name} ({entry._target_})", f"leave it out (logger=csv, or ~logger.{name})")
