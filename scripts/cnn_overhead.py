"""Lightning's cost over a hand-written PyTorch loop, for the CNN task on the same data.

Trains the same network, initialised the same way, on the same in-memory batches for
the same number of optimizer steps: (a) through `fit`'s Lightning path (build_run +
Trainer.fit, logging and checkpointing off) and (b) with a plain loop. Runs alternate
(a, b, a, b, ...) so both see the same machine load; prints steps/s and the ratio.

    python scripts/cnn_overhead.py [--steps 100] [--repeats 3] [--batch 128]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from lightning_template.command_line.hydra_command import CONFIG_DIR
from lightning_template.runs.assembly import build_run


def compose_cfg(steps: int, batch: int, output_dir: str):
    overrides = [
        "experiment=cnn", "trainer=cpu", f"trainer.max_steps={steps}", "trainer.max_epochs=-1",
        f"data.global_batch_size={batch}", "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.enable_checkpointing=false",
        "~logger", "~callbacks", f"paths.output_dir={output_dir}", "experiment_name=bench",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("fit", overrides=overrides)


def lightning_run(cfg, datamodule) -> float:
    run = build_run(cfg)
    run.datamodule.__dict__.update(datasets=datamodule.datasets)  # same in-memory data, no regeneration
    start = time.perf_counter()
    run.trainer.fit(run.model, datamodule=run.datamodule)
    elapsed = time.perf_counter() - start
    assert run.trainer.global_step == cfg.trainer.max_steps
    return elapsed


def plain_run(cfg, datamodule) -> float:
    run = build_run(cfg)  # the same seeded model and optimizer config; its Trainer goes unused
    model, steps = run.model, cfg.trainer.max_steps
    net = model.net
    optimizer = model.optimizer_factory(net.parameters())
    scheduler = model.scheduler_factory(optimizer, total_steps=steps)
    start = time.perf_counter()
    done = 0
    net.train()
    while done < steps:
        for batch in datamodule.train_loader(datamodule.datasets["train"]):
            images, labels, _ = datamodule.on_after_batch_transfer(batch, 0)  # uint8 to normalised float
            logits = net(images.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as output_dir:
        cfg = compose_cfg(args.steps, args.batch, output_dir)
        shared = build_run(cfg).datamodule
        shared.setup("fit")
        times: dict[str, list[float]] = {"lightning": [], "plain": []}
        lightning_run(cfg, shared)  # warm-up: first-call costs (allocator, thread pools) hit neither side
        for repeat in range(args.repeats):
            for name, fn in (("lightning", lightning_run), ("plain", plain_run)):
                times[name].append(fn(cfg, shared))
                print(f"repeat {repeat}: {name:9s} {args.steps / times[name][-1]:7.2f} steps/s", flush=True)
    lightning, plain = statistics.median(times["lightning"]), statistics.median(times["plain"])
    print(
        f"\nCNN, global batch {args.batch}, {args.steps} steps, {torch.get_num_threads()} threads, median of "
        f"{args.repeats}:"
    )
    print(f"  lightning fit path: {args.steps / lightning:.2f} steps/s ({lightning:.2f} s)")
    print(f"  plain PyTorch loop: {args.steps / plain:.2f} steps/s ({plain:.2f} s)")
    print(
        f"  ratio lightning/plain time: {lightning / plain:.3f}  "
        f"(overhead {1000 * (lightning - plain) / args.steps:+.1f} ms per step)"
    )


if __name__ == "__main__":
    main()
