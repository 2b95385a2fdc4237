"""The ``export`` command: the trained network as a file that loads without this project, and what it expects.

export ckpt_path=<run dir>/checkpoints/last.ckpt                  # <run dir>/export/model.pt2 and model.json
export ckpt_path=<file> format=torchscript                        # model.ts (torch.jit.load)

``pt2`` is ``torch.export.save`` (load with ``torch.export.load(path).module()``),
``torchscript`` a traced ``torch.jit`` module, ``onnx`` (the ``onnx`` extra) an ONNX file of the
exported program, which onnxruntime runs. What is exported, its example inputs and the JSON
beside it (input shapes, normalisation, class names or vocabulary) are the model's task's
(``tasks/<task>/inference.py``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from lightning_template_core._command_line.hydra_command import hydra_command
from lightning_template_core._command_line.optional_packages import require
from lightning_template_core._command_line.settings import EXPORT_FORMATS
from lightning_template_core._command_line.tables import print_table
from lightning_template_core._files.atomic import atomic_write_text, make_folder
from lightning_template_core._runs.task_inference import ExportSpec, inference_for
from lightning_template_core._runs.trained import load_trained, with_run_overrides
from lightning_template_core._stop_before_training import install as install_stop_handlers

SUFFIXES = dict(zip(EXPORT_FORMATS, (".pt2", ".ts", ".onnx"), strict=True))  # format= is checked by its rule


def _program(spec: ExportSpec) -> torch.export.ExportedProgram:
    """The network as torch.export captures it, with the task's dynamic axes (batch, length)."""
    dims: dict[str, torch.export.Dim] = {}
    shapes = [{d: dims.setdefault(n, torch.export.Dim(n)) for d, n in axes.items()} for axes in spec.dynamic]
    with warnings.catch_warnings():
        # torch's recurrent modules (nn.RNNBase) re-point their cached _flat_weights at their parameters on
        # each call; the exported program reads the parameters (the round trip is tested), so torch's advice
        # to make them buffers does not apply
        warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights.* during export")
        return torch.export.export(spec.module, spec.example_inputs, dynamic_shapes=tuple(shapes) or None)


def _write(spec: ExportSpec, fmt: str, path: Path) -> None:
    if fmt == "pt2":
        torch.export.save(_program(spec), path)
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.trace(spec.module, spec.example_inputs), path)
    else:
        # from the exported program (torch's current ONNX exporter): the TorchScript-based one cannot export
        # an adaptive pooling to a grid from inputs of dynamic size
        names = [entry["name"] for entry in spec.metadata["inputs"]]
        program = torch.onnx.export(_program(spec), spec.example_inputs, input_names=names, dynamo=True, verbose=False)
        program.save(str(path))


def _check_format(fmt: str) -> None:
    if fmt == "onnx":  # onnxruntime, to run the file, is in the extra too
        require("onnx", "format=onnx", "use format=pt2")


def run_export(cfg: DictConfig) -> dict[str, Any]:
    """Export ``cfg.ckpt_path`` in ``cfg.format`` to ``cfg.output_dir``; return what ``model.json`` says."""
    fmt = str(cfg.format)
    _check_format(fmt)
    trained = load_trained(cfg)
    spec = inference_for(trained, cfg).export_spec()
    spec.module.eval()
    output_dir = make_folder(str(cfg.output_dir), "output_dir")
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
    install_stop_handlers()  # as the console script does, once this module is imported
    main()
