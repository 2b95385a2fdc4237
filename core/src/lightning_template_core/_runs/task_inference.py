"""What a task lets the commands do with its trained model: the hooks a task's ``inference.py`` provides.

The commands know no task. They find a model's hooks by convention: the class
``INFERENCE`` of the module ``inference`` in the package of the model's class
(``tasks/<task>/module.py`` -> ``tasks/<task>/inference.py``), so a task plugs in with
one file of its own. A task overrides the hooks of what it supports; the others refuse
with a message that says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from lightning_template_core._errors import UserError
from lightning_template_core._runs.trained import TrainedModel


@dataclass
class ExportSpec:
    """What ``export`` traces and writes beside it.

    ``module`` maps ``example_inputs`` to plain tensors (or a tuple of them);
    ``dynamic`` names, per input, the dimensions that may vary (dimension -> name), and
    ``metadata`` says what a serving stack must know: input shapes and dtypes,
    normalisation, what the outputs mean (class names, vocabulary).
    """

    module: nn.Module
    example_inputs: tuple[Tensor, ...]
    metadata: dict[str, Any]
    dynamic: Sequence[dict[int, str]] = field(default_factory=tuple)


@dataclass
class Generated:
    """Sampled text and the notes about how the prompt was read (words the model does not know)."""

    text: str
    notes: list[str] = field(default_factory=list)


class TaskInference:
    """The hooks of one trained model; ``cfg`` is its run's config (with the command's keys)."""

    def __init__(self, trained: TrainedModel, cfg: DictConfig) -> None:
        self.trained, self.cfg = trained, cfg
        self.model, self.description = trained.model, trained.description

    @property
    def task(self) -> str:
        return type(self.model).__module__.split(".")[-2]

    def _unsupported(self, command: str) -> UserError:
        return UserError(
            f"{command} does not apply to ckpt_path={self.trained.ckpt_path}: it is a checkpoint of the"
            f" {self.task} task ({type(self.model).__name__}), which does not support {command}. Give a checkpoint"
            f" of a task that does (each task's page, docs/tasks/<task>.md, says what it supports)."
        )

    # predict
    def input_files(self, path: Path) -> list[Path]:
        """The files ``predict input=<path>`` reads (:func:`visible_files` for most tasks)."""
        raise self._unsupported("predict")

    def read_input(self, path: Path) -> Iterable[tuple[str, Tensor]]:
        """Named model inputs (one item each, no batch dimension) from one file; raises if it is unreadable."""
        raise self._unsupported("predict")

    def input_help(self) -> str:
        """What files ``predict`` takes for this task, for error messages."""
        return ""

    @torch.no_grad()
    def class_probabilities(self, inputs: Tensor) -> Tensor:
        """Probabilities ``(N, classes)`` for a batch of inputs; a classifier's softmax by default."""
        return torch.softmax(self.model(inputs.to(self.model.dtype)).double(), dim=-1)

    # generate
    def generate(self, prompt: str | None, words: int, temperature: float, generator: torch.Generator) -> Generated:
        raise self._unsupported("generate")

    # export
    def export_spec(self) -> ExportSpec:
        raise self._unsupported("export")

    def classifier_export(self, net: nn.Module, input_name: str, input_details: dict[str, Any]) -> ExportSpec:
        """The spec of a classifier's network: float items of the description's shape in, logits out."""
        shape = self.description.item_shape
        examples = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0), dtype=self.model.dtype)
        item = {"name": input_name, "shape": ["batch", *shape], "dtype": str(examples.dtype).removeprefix("torch.")}
        metadata = {
            "inputs": [{**item, **input_details}],
            "outputs": [{"name": "logits", "shape": ["batch", len(self.description.classes)]}],
            "classes": list(self.description.classes),
        }
        return ExportSpec(net, (examples,), metadata, ({0: "batch"},))


def visible_files(path: Path) -> list[Path]:
    """``path`` if it is a file, else every file in its folder tree but hidden ones, sorted."""
    if path.is_file():
        return [path]
    files = (p for p in path.rglob("*") if p.is_file())
    return sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(path).parts))


def inference_for(trained: TrainedModel, cfg: DictConfig) -> TaskInference:
    """The hooks of ``trained``'s task, found next to its LightningModule's class."""
    package = type(trained.model).__module__.rsplit(".", 1)[0]
    try:
        module = importlib.import_module(f"{package}.inference")
    except ModuleNotFoundError as err:
        if err.name != f"{package}.inference":
            raise
        return TaskInference(trained, cfg)
    return module.INFERENCE(trained, cfg)
