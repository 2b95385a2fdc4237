"""Reading what runs wrote, and a task's tiny settings: helpers a task's own tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import torch
import yaml
from omegaconf import DictConfig, open_dict

from lightning_template_core._command_line.compose import check_command_line
from lightning_template_core._command_line.hydra_command import CONFIG_DIR, compose_fit
from lightning_template_core._command_line.settings import check_settings
from lightning_template_core._runs.assembly import describe_data
from lightning_template_core._runs.task_inference import inference_for
from lightning_template_core._runs.trained import TrainedModel, load_trained
from lightning_template_core._verification.layouts import keep_every
from lightning_template_core.sweep.storage import default_url as sweep_storage_url

# what a task's tests may use of the core beyond its public API, kept here so that they never import a private module
__all__ = [
    "QUIET",
    "check_overrides",
    "checkpoint",
    "compose_fit",
    "describe_data",
    "exported_round_trip",
    "identical",
    "inference_for",
    "keep_every",
    "load_trained",
    "quiet_trainer",
    "run_exported",
    "run_to_end",
    "sweep_storage_url",
    "tiny_overrides",
    "trained_model",
    "verify",
    "weights",
]
from lightning_template_core.testing.commands import Completed, console_script, run_command

# a run's console without the progress bar and the model summary: what a test reads is the rest
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def tiny_overrides(beside: str | Path) -> list[str]:
    """The ``overrides`` of the ``tiny.yaml`` beside ``beside`` (a test file: ``tiny_overrides(__file__)``), quiet."""
    path = Path(beside)
    path = path if path.name.endswith(".yaml") else path.with_name("tiny.yaml")
    return [*(yaml.safe_load(path.read_text()) or {}).get("overrides", []), *QUIET]


def check_overrides(command: str, overrides: list[str]) -> None:
    """The command line of ``command`` composed and checked as the command checks it (a UserError if wrong)."""
    check_command_line(str(CONFIG_DIR), command, list(overrides), check_settings)


def run_to_end(run_dir: Path, *overrides: str) -> Completed:
    """``fit`` with ``overrides`` in ``run_dir``, which must succeed."""
    return run_command("fit", run_dir, *overrides)


def checkpoint(run_dir: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)


def weights(run_dir: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return checkpoint(run_dir, name)["state_dict"]


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold the same tensors bit for bit."""
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def verify(run_dir: Path, *overrides: str) -> tuple[Completed, dict]:
    """The ``verify`` command on ``overrides`` (exit 0 or 1, no traceback) and its ``verify.json``."""
    run = console_script("verify", *overrides, f"hydra.run.dir={run_dir}", check=False)
    assert run.returncode in (0, 1), run.output[-6000:]
    assert "Traceback" not in run.output, run.output[-6000:]
    return run, json.loads((run_dir / "verify.json").read_text())


def quiet_trainer(**settings) -> L.Trainer:
    """A CPU Trainer without logger, progress bar or model summary, for in-process module tests."""
    quiet = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    return L.Trainer(**{**quiet, **settings})


def trained_model(checkpoint_path: Path, overrides: list[str]) -> tuple[TrainedModel, DictConfig]:
    """The model of a checkpoint fitted with ``overrides``, loaded in this process, and its config."""
    cfg = compose_fit(overrides)
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint_path)
    return load_trained(cfg), cfg


# Loads an exported model and runs it on saved inputs in a fresh interpreter that imports neither the core nor a task.
_RUN_EXPORTED = """
import sys, torch
model_path, inputs_path, outputs_path, packages = sys.argv[1:]
inputs = torch.load(inputs_path, weights_only=True)
if model_path.endswith(".onnx"):
    import onnxruntime
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feed = {entry.name: tensor.numpy() for entry, tensor in zip(session.get_inputs(), inputs)}
    outputs = [torch.from_numpy(output) for output in session.run(None, feed)]
else:
    model = torch.export.load(model_path).module() if model_path.endswith(".pt2") else torch.jit.load(model_path)
    outputs = model(*inputs)
assert not {name.split(".")[0] for name in sys.modules} & set(packages.split(",")), "the project was imported"
torch.save(list(outputs) if isinstance(outputs, (tuple, list)) else [outputs], outputs_path)
"""


def run_exported(model_path: Path, inputs: tuple[torch.Tensor, ...], work: Path, packages: str) -> list[torch.Tensor]:
    """The outputs of an exported model on ``inputs``, computed in a fresh process that imports none of ``packages``."""
    torch.save(list(inputs), work / "inputs.pt")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, "-c", _RUN_EXPORTED, str(model_path), str(work / "inputs.pt"), str(work / "out.pt")]
    proc = subprocess.run([*command, packages], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(work / "out.pt", weights_only=True)


def exported_round_trip(run: Completed, fmt: str, work: Path, overrides: list[str]) -> float:
    """Export ``run``'s last checkpoint as ``fmt``; the largest difference between the reloaded file's outputs
    and the checkpoint's model's on the export's example inputs (computed here, through the task)."""
    checkpoint_path = run.run_dir / "checkpoints" / "last.ckpt"
    console_script("export", f"ckpt_path={checkpoint_path}", f"format={fmt}", f"output_dir={work}")
    metadata = json.loads((work / "model.json").read_text())
    trained, cfg = trained_model(checkpoint_path, overrides)
    spec = inference_for(trained, cfg).export_spec()
    with torch.no_grad():
        expected = spec.module.eval()(*spec.example_inputs)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    task_package = type(trained.model).__module__.split(".")[0]
    packages = f"lightning_template_core,{task_package}"
    outputs = run_exported(work / metadata["file"], spec.example_inputs, work, packages)
    assert [o.shape for o in outputs] == [e.shape for e in expected]
    return max((o.double() - e.double()).abs().max().item() for o, e in zip(outputs, expected, strict=True))
