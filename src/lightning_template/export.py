"""The ``export`` command: the trained network as a file that loads without this project, and what it expects.

export ckpt_path=<run dir>/checkpoints/last.ckpt                  # <run dir>/export/model.pt2 and model.json
export ckpt_path=<file> format=torchscript                        # model.ts (torch.jit.load)

``pt2`` is ``torch.export.save`` (load with ``torch.export.load(path).module()``),
``torchscript`` a traced ``torch.jit`` module, ``onnx`` needs the onnx package. What is
exported, its example inputs and the JSON beside it (input shapes, normalisation,
class names or vocabulary) are the model's task's (``tasks/<task>/inference.py``).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from lightning_template.command_line.hydra_command import hydra_command
from lightning_template.command_line.settings import EXPORT_FORMATS
from lightning_template.command_line.tables import print_table
from lightning_template.errors import UserError
from lightning_template.files.atomic import atomic_write_text
from lightning_template.runs.task_inference import ExportSpec, inference_for
from lightning_template.runs.trained import load_trained, with_run_overrides

SUFFIXES = dict(zip(EXPORT_FORMATS, (".pt2", ".ts", ".onnx"), strict=True))  # format= is checked by its rule


def _write(spec: ExportSpec, fmt: str, path: Path) -> None:
    if fmt == "pt2":
        dims: dict[str, torch.export.Dim] = {}
        shapes = [{d: dims.setdefault(n, torch.export.Dim(n)) for d, n in axes.items()} for axes in spec.dynamic]
        with warnings.catch_warnings():
            # torch's recurrent modules (nn.RNNBase) re-point their cached _flat_weights at their parameters on
            # each call; the exported program reads the parameters (the round trip is tested), so torch's advice
            # to make them buffers does not apply
            warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights.* during export")
            program = torch.export.export(spec.module, spec.example_inputs, dynamic_shapes=tuple(shapes) or None)
        torch.export.save(program, path)
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.trace(spec.module, spec.example_inputs), path)
    else:
        names = [entry["name"] for entry in spec.metadata["inputs"]]
        axes = {name: axes for name, axes in zip(names, spec.dynamic, strict=False)}
        torch.onnx.export(spec.module, spec.example_inputs, path, input_names=names, dynamic_axes=axes, dynamo=False)


def _check_format(fmt: str) -> None:
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        raise UserError(
            "format=onnx needs the onnx package, which is not installed: pip install onnx, or use format=pt2."
        )


def run_export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt_path`` in ``cfg.format`` to ``cfg.output_dir``; return what ``model.json`` says."""
    fmt = str(cfg.format)
    _check_format(fmt)
    trained = load_trained(cfg)
    spec = inference_for(trained, cfg).export_spec()
    spec.module.eval()
    output_dir = Path(str(cfg.output_dir))
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"model{SUFFIXES[fmt]}"
    partial = path.with_name(f".partial-{path.name}")
    with torch.no_grad():
        _write(spec, fmt, partial)
    partial.replace(path)  # a failed export leaves no file that looks complete
    metadata = {
        "file": path.name,
        "format": fmt,
        "checkpoint": str(trained.ckpt_path),
        "torch": torch.__version__,
        **spec.metadata,
    }
    atomic_write_text(output_dir / "model.json", json.dumps(metadata, indent=2) + "\n")
    print_table("export", {"model": path, "metadata": output_dir / "model.json", "format": fmt})
    return metadata


main = hydra_command("export", with_run_overrides)(run_export)

if __name__ == "__main__":
    main()
