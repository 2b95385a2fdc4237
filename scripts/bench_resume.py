"""What surviving failures costs, and that it is exact: for each task's shipped experiment (CPU).

For each task: an uninterrupted run of ``--steps`` optimizer steps with a checkpoint every
``--every`` steps; ``--trials`` runs each killed with SIGKILL at ``--kills`` random moments and
continued with ``ckpt_path=last`` until done (max |dW| against the uninterrupted run, 0 means
bit-identical); the checkpoint's size; the time to write it atomically (median of 5) and to
load it; and the wall time of a ``fit`` that resumes from it and trains one step, beside
one that starts from scratch and trains one step.

    python scripts/bench_resume.py                 # every task
    python scripts/bench_resume.py --tasks TASK --trials 5
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from lightning_template_core._checkpointing import atomic_torch_save
from lightning_template_core._command_line.hydra_command import CONFIG_DIR

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "test_after_fit=false"]


def fit(run_dir: Path, *overrides: str, kill_after: float | None = None) -> tuple[int, float]:
    """Run ``fit`` (killed with SIGKILL after ``kill_after`` seconds if given); its exit status and wall time."""
    command = [sys.executable, "-m", "lightning_template_core.fit", f"hydra.run.dir={run_dir}", *QUIET, *overrides]
    began = time.perf_counter()
    with open(run_dir.with_suffix(".log"), "a") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, time.perf_counter() - began


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def measure(task: str, args: argparse.Namespace, work: Path) -> dict[str, float | str]:
    common = [f"experiment={task}", f"trainer.max_steps={args.steps}", "ckpt_path=last"]
    common += [f"callbacks.model_checkpoint.every_n_train_steps={args.every}", *args.overrides]
    straight = work / f"{task}-straight"
    status, duration = fit(straight, *common)
    assert status == 0, f"the uninterrupted {task} run failed: see {straight.with_suffix('.log')}"
    reference, draw, worst, kills = weights(straight), random.Random(f"{task}-{args.seed}"), 0.0, 0
    for trial in range(args.trials):
        run_dir = work / f"{task}-killed{trial}"
        for _ in range(args.kills):
            status, _ = fit(run_dir, *common, kill_after=draw.uniform(0.2, 1.0) * duration)
            kills += status == -signal.SIGKILL
        status, _ = fit(run_dir, *common)
        assert status == 0, f"{task} trial {trial} did not finish: see {run_dir.with_suffix('.log')}"
        worst = max(worst, max_difference(reference, weights(run_dir)))
    last = straight / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    save_seconds, load_seconds = [], []
    for _ in range(5):
        began = time.perf_counter()
        atomic_torch_save(checkpoint, work / "copy.ckpt")
        save_seconds.append(time.perf_counter() - began)
        began = time.perf_counter()
        torch.load(work / "copy.ckpt", map_location="cpu", weights_only=True)
        load_seconds.append(time.perf_counter() - began)
    resumed = work / f"{task}-resumed"
    _, resume_wall = fit(resumed, *common, f"ckpt_path={last}", f"trainer.max_steps={args.steps + 1}")
    _, scratch_wall = fit(work / f"{task}-scratch", f"experiment={task}", "trainer.max_steps=1", *args.overrides)
    return {
        "task": task,
        "trials": args.trials,
        "kills": kills,
        "max abs dW": worst,
        "checkpoint MB": last.stat().st_size / 1e6,
        "save s": statistics.median(save_seconds),
        "load s": statistics.median(load_seconds),
        "resume + 1 step s": resume_wall,
        "scratch + 1 step s": scratch_wall,
        "uninterrupted s": duration,
    }


def main() -> None:
    tasks = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml") if "_" not in path.stem)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=tasks, choices=tasks)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="fit overrides for every run, e.g. model.net.dropout=0.3")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for task in args.tasks:
            rows.append(measure(task, args, Path(work)))
            print(" | ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()))
    print("\n| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
