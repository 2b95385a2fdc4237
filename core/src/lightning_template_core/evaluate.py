"""The ``evaluate`` command: a checkpoint's metrics on one split, the numbers ``fit`` reports for it.

evaluate ckpt_path=<run dir>/checkpoints/last.ckpt              # the test split, as the run was configured
evaluate ckpt_path=<file> split=val trainer=ddp_cpu trainer.devices=2
python -m lightning_template_core.evaluate ckpt_path=<file> data.root=<other data>

The run's config comes from the checkpoint's run directory (see ``trained``); the
metrics are printed and written to ``<run dir>/eval.json``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from lightning_template_core._batching.data_description import DataDescription
from lightning_template_core._command_line.hydra_command import hydra_command
from lightning_template_core._command_line.tables import print_table
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._runs.assembly import build_run
from lightning_template_core._runs.provenance import describe_code
from lightning_template_core._runs.split_metrics import split_metrics
from lightning_template_core._runs.trained import open_checkpoint, with_run_overrides
from lightning_template_core._stop_before_training import install as install_stop_handlers


def _without_training_outputs(cfg: DictConfig) -> DictConfig:
    """``cfg`` without loggers and callbacks: evaluating writes nothing into the run's logs or checkpoints."""
    quiet = cfg.copy()
    with open_dict(quiet):
        quiet.logger = None
        quiet.callbacks = None
    return quiet


def run_evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split``; return (and on rank 0 write and print) the metrics."""
    checkpoint = open_checkpoint(cfg)
    run = build_run(_without_training_outputs(cfg), trained=DataDescription.of(checkpoint["hyper_parameters"]["data"]))
    del checkpoint  # the Trainer reads it again, as fit's test does
    # evaluating needs none of the run's callbacks, which Lightning warns are missing
    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")
    metrics = split_metrics(run, str(cfg.ckpt_path), cfg.split)
    result = {"checkpoint": str(cfg.ckpt_path), "split": cfg.split, "layout": run.layout.describe(), "metrics": metrics}
    if run.trainer.is_global_zero:
        output = Path(cfg.paths.output_dir) / "eval.json"
        atomic_write_text(output, json.dumps(result, indent=2) + "\n")
        code = describe_code(Path(cfg.paths.output_dir))
        rows = {**metrics, "checkpoint": result["checkpoint"], **({"trained by code": code} if code else {})}
        print_table(f"evaluate: {cfg.split}", {**rows, "written to": output})
    return result


main = hydra_command("evaluate", with_run_overrides)(run_evaluate)

if __name__ == "__main__":
    install_stop_handlers()  # as the console script does, once this module is imported
    main()
