"""The ``tune`` command: the largest micro-batch that fits one device, and a learning rate.

tune experiment=<name>                   # writes <run dir>/tuned/<name>.yaml and <run dir>/lr_find.png
fit experiment=<name> 'hydra.searchpath=[file://<run dir>]' +tuned=<name>   # trains with it (tune prints this)
python -m lightning_template_core.tune experiment=<name> tune.lr_find=false

Both finders run on one device, whatever the trainer preset says (memory per device
is what the batch-size finder measures, and Lightning refuses it under DDP).
``tune.fit_world_size`` (default: the devices x nodes of the trainer settings) is the
world size the tuned ``fit`` will use: the micro-batch chosen is the largest that fit
*and* divides ``data.global_batch_size / fit_world_size``, so the user's global batch,
and with it the optimization, stays as it was. The LR range test trains at that global
batch (accumulating on one device) and its suggestion is the LR at that batch size.

The result is a Hydra config file ``<config_dir>/tuned/<tune.name>.yaml`` marked
``# @package _global_``: ``fit +tuned=<name>`` merges it over the experiment. It sets
``data.global_batch_size``, ``data.micro_batch_size``, ``model.optimizer.lr`` and
``lr_reference_batch_size`` (so ``lr_scaling`` rescales from the batch it was found
at). ``tune.config_dir`` is the tune run's own directory by default (nothing is
written into the project), so ``fit`` needs that folder on its search path:
``fit 'hydra.searchpath=[file://<dir>]' +tuned=<name>``, the command tune prints.
``tune.config_dir=<dir>`` writes to ``<dir>/tuned/`` instead; the project's configs
folder needs no search path.
"""

from __future__ import annotations

import datetime
import math
import re
import shlex
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import yaml
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig, OmegaConf, open_dict

from lightning_template_core._batching.layout import BatchLayout
from lightning_template_core._command_line.hydra_command import CONFIG_DIR, hydra_command
from lightning_template_core._errors import UserError
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._reporting import RankZeroLogger
from lightning_template_core._runs.assembly import build_run
from lightning_template_core._stop_before_training import install as install_stop_handlers

log = RankZeroLogger(__name__)

ONE_DEVICE = {"devices": 1, "num_nodes": 1, "strategy": "auto"}


def fit_world_size(cfg: DictConfig) -> int:
    """The number of processes the tuned ``fit`` will train on: ``tune.fit_world_size`` or the trainer's."""
    given = cfg.tune.get("fit_world_size")
    if given is not None:
        return given
    keys = ("accelerator", "devices", "num_nodes", "strategy")
    settings = {key: cfg.trainer[key] for key in keys}
    try:
        trainer = L.Trainer(**settings, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    except Exception as err:  # Lightning raises several types for impossible device settings
        raise UserError(
            f"The trainer settings {settings} are not possible here ({str(err)[:200]}): set tune.fit_world_size to"
            " the devices x nodes the tuned fit will use, or fix the trainer.* overrides."
        ) from err
    return trainer.world_size


def largest_divisor_at_most(number: int, bound: int) -> int:
    """The largest divisor of ``number`` that is ``<= bound`` (at least 1)."""
    return max(d for d in range(1, min(number, max(bound, 1)) + 1) if number % d == 0)


def _one_device_config(cfg: DictConfig, **data: Any) -> DictConfig:
    """A copy of ``cfg`` for one device, without loggers and checkpoints (the finders keep nothing)."""
    changed = {key: cfg.trainer[key] for key in ONE_DEVICE if cfg.trainer[key] != ONE_DEVICE[key]}
    if changed:
        log.info(f"tune runs on one device: overriding trainer {changed} with {ONE_DEVICE}")
    tuned = cfg.copy()
    with open_dict(tuned):
        tuned.trainer.update(ONE_DEVICE, accumulate_grad_batches=None, enable_checkpointing=False)
        tuned.data.update(data)
        tuned.logger = None
        tuned.callbacks = None
    return tuned


def _refuse_manual_optimization(model: L.LightningModule) -> None:
    if not model.automatic_optimization:
        raise UserError(
            f"{type(model).__name__} uses manual optimization (automatic_optimization=False): Lightning's tuner"
            " cannot drive it (the LR finder needs Lightning to step the optimizer, and accumulation is refused)."
            " Tune a model with automatic optimization, or choose data.micro_batch_size and model.optimizer.lr"
            " by hand."
        )


def find_micro_batch_size(cfg: DictConfig, per_device: int) -> int:
    """The largest power-of-two micro-batch up to ``tune.max_micro_batch_size`` and ``per_device`` that trains.

    The finder doubles the global batch of a one-device run without accumulation
    (there, global batch = micro-batch) until memory runs out or the bound is reached.
    """
    bound = min(cfg.tune.max_micro_batch_size, per_device)
    start = min(2, bound)
    one_device = _one_device_config(cfg, global_batch_size=start, micro_batch_size=None)
    run = build_run(one_device, max_epochs=-1, max_steps=cfg.tune.steps_per_trial)
    _refuse_manual_optimization(run.model)
    found = Tuner(run.trainer).scale_batch_size(
        run.model,
        datamodule=run.datamodule,
        mode="power",
        steps_per_trial=cfg.tune.steps_per_trial,
        init_val=start,
        max_trials=int(math.log2(bound / start)) + 1,  # the last trial is the largest power of two <= bound
        batch_arg_name="global_batch_size",
        max_val=bound + 1,
    )
    if found is None:
        raise UserError("The batch-size finder does not run with trainer.fast_dev_run: drop debug=fast_dev_run.")
    return found


def find_lr(cfg: DictConfig, micro_batch_size: int, png: Path) -> float:
    """The LR finder's suggestion at the user's global batch; the curve, with it marked, goes to ``png``."""
    run = build_run(
        _one_device_config(cfg, micro_batch_size=micro_batch_size), max_epochs=-1, max_steps=cfg.tune.lr_num_training
    )
    _refuse_manual_optimization(run.model)
    finder = Tuner(run.trainer).lr_find(
        run.model,
        datamodule=run.datamodule,
        min_lr=cfg.tune.lr_min,
        max_lr=cfg.tune.lr_max,
        num_training=cfg.tune.lr_num_training,
        early_stop_threshold=cfg.tune.lr_early_stop_threshold,
        update_attr=False,
    )
    suggestion = finder.suggestion() if finder is not None else None
    if finder is not None:
        import matplotlib

        matplotlib.use("Agg")
        figure = finder.plot(suggest=suggestion is not None, show=False)
        figure.axes[0].set_title(f"LR range test at global batch {run.layout.global_batch_size}")
        png.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(png, dpi=120)
    if suggestion is None:
        raise UserError(
            f"The LR finder recorded too few steps to suggest a learning rate (curve: {png}): raise"
            f" tune.lr_num_training (now {cfg.tune.lr_num_training}) or tune.lr_early_stop_threshold, or widen"
            " tune.lr_min .. tune.lr_max."
        )
    return float(suggestion)


def write_override(path: Path, values: dict[str, Any], comment: str) -> None:
    """A Hydra config file at the global package, so ``fit +tuned=<name>`` merges ``values`` over the experiment."""
    header = f"# @package _global_\n# {comment}\n"
    atomic_write_text(path, header + yaml.safe_dump(values, sort_keys=False))


def fit_command(experiment: str, config_dir: Path, name: str) -> str:
    """The shell command that trains ``experiment`` with ``<config_dir>/tuned/<name>.yaml``.

    A folder other than the project's configs joins Hydra's search path; the override is
    quoted, since ``[`` is a glob character to the shell (zsh refuses an unmatched one).
    """
    args = ["fit", f"experiment={experiment}"]
    if config_dir.resolve() != CONFIG_DIR.resolve():
        folder = f"file://{config_dir.resolve()}"
        if not re.fullmatch(r"[\w./:\- ]+", folder):  # Hydra's grammar takes other characters only quoted
            folder = '"' + folder.replace('"', '\\"') + '"'
        args.append(f"hydra.searchpath=[{folder}]")
    args.append(f"+tuned={name}")
    return shlex.join(args)


def run_tune(cfg: DictConfig) -> Path:
    """Run the finders ``cfg.tune`` asks for and write the override file; return its path."""
    world = fit_world_size(cfg)
    global_batch = cfg.data.global_batch_size
    per_device = BatchLayout.resolve(global_batch, None, world).micro_batch_size  # checks the global batch
    micro = cfg.data.micro_batch_size
    values: dict[str, Any] = {"data": {"global_batch_size": global_batch}}
    notes = []
    if cfg.tune.scale_batch_size:
        fitting = find_micro_batch_size(cfg, per_device)
        micro = largest_divisor_at_most(per_device, fitting)
        values["data"]["micro_batch_size"] = micro
        notes.append(f"micro-batch {micro} (largest divisor of {per_device} <= {fitting}, the largest that fit)")
    if micro is not None:
        BatchLayout.resolve(global_batch, micro, world)  # a hand-set micro-batch must fit the fit run's layout
    if cfg.tune.lr_find:
        lr = find_lr(cfg, micro, Path(cfg.paths.output_dir) / "lr_find.png")
        values["model"] = {"optimizer": {"lr": lr}}
        values["lr_reference_batch_size"] = global_batch
        notes.append(f"lr {lr:.4g} at global batch {global_batch}")
    if len(values) == 1 and len(values["data"]) == 1:
        raise UserError("tune.scale_batch_size and tune.lr_find are both false: there is nothing to tune.")
    name = cfg.tune.name
    output_dir = Path(cfg.paths.output_dir)
    config_dir = Path(cfg.tune.config_dir).expanduser() if cfg.tune.get("config_dir") else output_dir
    config_dir = config_dir.resolve()
    path = config_dir / "tuned" / f"{name}.yaml"
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    summary = "; ".join(notes)
    where = f"tune experiment={cfg.experiment_name} ({stamp}, {world} device(s))"
    write_override(path, values, f"Written by {where}: {summary}.")
    print(f"\nTuned: {summary}.\nWrote {path}\nUse it: {fit_command(cfg.experiment_name, config_dir, name)}")
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    return path


main = hydra_command("tune")(run_tune)

if __name__ == "__main__":
    install_stop_handlers()  # as the console script does, once this module is imported
    main()
