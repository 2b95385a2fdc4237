"""Lightning's fit path against bare Lightning and a hand-written PyTorch loop, per task, on the same network,
batches, optimizer, schedule, clipping and precision.

The fit path is what `fit` runs: the task's shipped experiment with its callbacks, logger
and progress bar. Bare Lightning is Lightning's own Trainer with the same settings
(accumulation, precision, clipping, max_steps, ...) training the same LightningModule on the
same DataModule, with none of the template's callbacks, logger, progress bar, checkpoint I/O
or fit loop: what the template adds to Lightning is the difference. The hand-written loop
trains a third copy of the same initial network on the same DataModule's batches, moved and
prepared the same way, with the optimizer and schedule the config builds, and nothing else.
Each run trains `--warmup` steps, then `--steps` timed steps (the device synchronised at both
ends; set-up, the warm-up and the final checkpoint excluded); the three sides alternate
`--repeats` times so all see the same machine load, and the median is reported. Host reads
per step (training/host_reads.py) are counted in a separate, shorter run of each side, since
counting slows every op.

    python scripts/bench_step.py [--device cpu|cuda] [--tasks <task> ...] [--steps 30] [--repeats 3]
    python scripts/bench_step.py --smoke      # 3 steps, once, small data: that it runs (the test suite does this)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.utilities.apply_func import move_data_to_device
from omegaconf import DictConfig, OmegaConf

from lightning_template_core._command_line.hydra_command import compose_job
from lightning_template_core._runs.assembly import Run, build_run
from lightning_template_core._runs.small_data import small_data
from lightning_template_core._training.host_reads import CountHostReads, HostReadCounter


# What one micro-batch adds to the global-batch loss, written as a user would without Lightning:
# (model, batch, carried state) -> summed loss / items of the global batch.
def _classifier_loss(logits: torch.Tensor, labels: torch.Tensor, global_items: int) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="sum") / global_items


LOSSES: dict[str, Callable[[Any, Any, dict], torch.Tensor]] = {}
# >>> cnn
LOSSES["cnn"] = lambda model, batch, state: _classifier_loss(
    model.net(batch.images.contiguous(memory_format=model.memory_format)), batch.labels, batch.global_items
)
# <<< cnn
# >>> lm


def _lm_loss(model: Any, batch: Any, state: dict) -> torch.Tensor:
    """Truncated BPTT: each stream slot carries its hidden state into its next window."""
    hidden = state.get(batch.slot) if model.carry_hidden and batch.window else None
    logits, hidden = model.net(batch.inputs, hidden)
    state[batch.slot] = tuple(h.detach() for h in hidden)
    return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="sum") / batch.global_items


LOSSES["lm"] = _lm_loss
# <<< lm
# >>> sentences
LOSSES["sentences"] = lambda model, batch, state: model.losses(batch).sum() / model.global_count(batch)
# <<< sentences
# >>> video
LOSSES["video"] = lambda model, batch, state: _classifier_loss(model.net(batch.clips), batch.labels, batch.global_items)
# <<< video


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def config(task: str, device: str, total_steps: int, output_dir: Path, small: bool = False) -> DictConfig:
    """The task's shipped experiment on ``device`` for ``total_steps`` optimizer steps, run in ``output_dir``
    (``small``: on the data sizes of configs/small_data/, for the smoke run)."""
    where = [f"trainer.accelerator={device}", "trainer.devices=1", "trainer.strategy=auto"]
    length = [f"trainer.max_steps={total_steps}", "trainer.max_epochs=-1", "test_after_fit=false"]
    job = compose_job([f"experiment={task}", *where, *length], output_dir)
    for key, value in (small_data(HydraConfig.get().runtime.choices.data) if small else {}).items():
        OmegaConf.update(job, key, value)
    return job


class StepClock(L.Callback):
    """The seconds from the start of step ``first`` to the end of the last step, the device synchronised."""

    def __init__(self, first: int) -> None:
        self.first, self.started, self.ended = first, 0.0, 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step == self.first and not self.started:
            synchronise(pl_module.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step == trainer.max_steps and not trainer.fit_loop._should_accumulate():
            synchronise(pl_module.device)
            self.ended = time.perf_counter()


def bare_trainer(cfg: DictConfig, like: L.Trainer) -> L.Trainer:
    """Lightning's own Trainer with ``cfg.trainer``'s settings and ``like``'s accumulation, and none of the
    template's callbacks, logger, progress bar, checkpoint I/O or fit loop."""
    settings = OmegaConf.to_container(cfg.trainer, resolve=True)
    settings.pop("_target_", None)
    settings.update(accumulate_grad_batches=like.accumulate_grad_batches, logger=False, callbacks=[])
    settings.update(enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(**settings)


def lightning_loop(
    task: str, device: str, warmup: int, steps: int, count: bool = False, small: bool = False, bare: bool = False
) -> tuple[float, float, Run]:
    """Seconds of the timed steps through `fit`'s path (``bare``: through :func:`bare_trainer`), and host reads
    per step (``count``); the run."""
    with tempfile.TemporaryDirectory() as output_dir:
        cfg = config(task, device, warmup + steps, Path(output_dir), small)
        run = build_run(cfg)
        if bare:
            run = dataclasses.replace(run, trainer=bare_trainer(cfg, run.trainer))
        clock = StepClock(warmup)
        run.trainer.callbacks.insert(0, clock)  # first: the final checkpoint, saved at the last step, is not timed
        counting = CountHostReads().attach(run.trainer) if count else None
        run.trainer.fit(run.model, datamodule=run.datamodule)
    reads = counting.per_step(run.trainer.accumulate_grad_batches) if counting else float("nan")
    return clock.ended - clock.started, reads, run


def hand_loop(
    task: str, device: str, warmup: int, steps: int, count: bool = False, small: bool = False
) -> tuple[float, float, Run]:
    """The same as :func:`lightning_loop` with a plain loop: forward, backward, clip, step, schedule."""
    with tempfile.TemporaryDirectory() as output_dir:
        cfg = config(task, device, warmup + steps, Path(output_dir), small)
        run = build_run(cfg)  # the same seeded network and the same data; its Trainer only sizes the batches
    model, data, where = (
        run.model.to(run.trainer.strategy.root_device),
        run.datamodule,
        run.trainer.strategy.root_device,
    )
    data.trainer = run.trainer
    data.setup("fit")
    optimizer = model.optimizer_factory(model.parameters())
    scheduler = None
    if model.scheduler_factory is not None and model.scheduler_interval == "step":
        scheduler = model.scheduler_factory(optimizer, total_steps=warmup + steps)
    clip = cfg.trainer.get("gradient_clip_val")
    accumulate, state = run.trainer.accumulate_grad_batches, {}
    precision = str(cfg.trainer.precision)
    autocast = torch.autocast(where.type, dtype=torch.bfloat16) if "bf16" in precision else contextlib.nullcontext()
    counter = HostReadCounter() if count else contextlib.nullcontext()
    done, micro, started = 0, 0, 0.0
    model.train()
    with counter:
        while done < warmup + steps:
            for batch in data.train_dataloader():
                if done == warmup and micro == 0 and not started:
                    synchronise(where)
                    started = time.perf_counter()
                batch = data.on_after_batch_transfer(move_data_to_device(batch, where), 0)
                with autocast:
                    loss = LOSSES[task](model, batch, state)
                loss.backward()
                micro += 1
                if micro < accumulate:
                    continue
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None:
                    scheduler.step()
                done, micro = done + 1, 0
                if done == warmup + steps:
                    break
    synchronise(where)
    reads = sum(counter.counts.values()) / (warmup + steps) if count else float("nan")
    return time.perf_counter() - started, reads, run


def items_per_step(run: Run) -> int:
    return int(run.datamodule.global_batch_size or 0)


# The sides, in the order each repeat runs them and the table shows them.
SIDES: dict[str, Callable[..., tuple[float, float, Run]]] = {
    "hand": hand_loop,
    "bare": functools.partial(lightning_loop, bare=True),
    "fit": lightning_loop,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--tasks", nargs="*", default=sorted(LOSSES))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--smoke", action="store_true", help="3 steps, 1 repeat, 1 warm-up step, small data: that it runs"
    )
    args = parser.parse_args()
    if args.smoke:
        args.warmup, args.steps, args.repeats = 1, 3, 1
    warnings.filterwarnings("ignore")
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    rows = []
    for task in args.tasks:
        times: dict[str, list[float]] = {name: [] for name in SIDES}
        memory: dict[str, float] = {}
        for repeat in range(args.repeats):
            for name, side in SIDES.items():
                if args.device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                seconds, _, run = side(task, accelerator, args.warmup, args.steps, small=args.smoke)
                times[name].append(seconds)
                if args.device == "cuda":
                    memory[name] = torch.cuda.max_memory_allocated() / 2**20
                print(f"{task} repeat {repeat}: {name} {1000 * seconds / args.steps:8.1f} ms/step", flush=True)
        reads = {name: side(task, accelerator, 1, 3, count=True, small=args.smoke)[1] for name, side in SIDES.items()}
        ms = {name: 1000 * statistics.median(times[name]) / args.steps for name in SIDES}
        rows.append((task, items_per_step(run) * 1000 / ms["fit"], ms, reads, memory))
    print(f"\n{args.device}, {torch.get_num_threads()} threads, {args.steps} steps after {args.warmup} (median of")
    print(f"{args.repeats}); items: data.global_batch_size's unit (samples, streams, clips, ...) per step; a / b:")
    print("the speed of a over that of b (b's time over a's); bare: Lightning's Trainer without the template's parts:")
    print(
        "| task | items/s fit | ms/step hand | ms/step bare | ms/step fit | fit / bare | fit / hand | bare / hand"
        " | host reads/step hand, bare, fit | peak MiB hand, bare, fit |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task, rate, ms, reads, memory in rows:
        figures = " | ".join(f"{ms[name]:.1f}" for name in SIDES)
        ratios = " | ".join(f"{ms[b] / ms[a]:.3f}" for a, b in (("fit", "bare"), ("fit", "hand"), ("bare", "hand")))
        counted = ", ".join(f"{reads[name]:.2f}" for name in SIDES)
        peak = ", ".join(f"{memory[name]:.0f}" for name in SIDES) if memory else "n/a (CPU)"
        print(f"| {task} | {rate:.0f} | {figures} | {ratios} | {counted} | {peak} |")


if __name__ == "__main__":
    main()
