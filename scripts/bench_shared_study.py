"""Trials per minute of one study run by 1 and by 2 `sweep` processes at once, with the budget and duplicates.

Each configuration starts a new study (a random search over the learning rate, run_cap
``--trials``) on ``--storage`` (default: a journal file in a temporary folder; give a
``postgresql://`` URL to measure a server), starts the processes at the same moment with
``--workers`` each, and prints the wall time, trials per minute, the trials the study
holds (must be ``--trials``) and how many share a learning rate (must be 0). Each trial is
the project's first task on its tests' tiny configuration (tests/tasks/<task>/tiny.yaml).

    python scripts/bench_shared_study.py
    python scripts/bench_shared_study.py --storage postgresql://user@host/db --trials 12
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from lightning_template_core._command_line.hydra_command import CONFIG_DIR
from lightning_template_core.sweep.storage import open_storage

ROOT = CONFIG_DIR.parent
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "test_after_fit=false"]


def tiny_trial() -> tuple[str, list[str]]:
    """The first task's name and its tests' tiny overrides: a trial whose cost is mostly the fit process."""
    path = sorted((ROOT / "tests" / "tasks").glob("*/tiny.yaml"))[0]
    return path.parent.name, [*yaml.safe_load(path.read_text())["overrides"], "trainer.max_epochs=1", *QUIET]


def run(processes: int, args: argparse.Namespace, work: Path) -> dict[str, float]:
    task, overrides = tiny_trial()
    metric = yaml.safe_load((CONFIG_DIR / "sweep" / f"{task}.yaml").read_text())["metric"]
    name = f"bench-{processes}-{int(time.time())}"
    config = work / f"{name}.yaml"
    lr = {"distribution": "log_uniform_values", "min": 0.003, "max": 0.3}
    parameters = {"experiment": {"value": task}, "model.optimizer.lr": lr}
    sweep = {"method": "random", "metric": metric, "run_cap": args.trials, "parameters": parameters}
    config.write_text(yaml.safe_dump(sweep))
    storage = args.storage or f"journal:{work / name}.log"
    command = [sys.executable, "-m", "lightning_template_core.sweep", str(config), "--storage", storage]
    command += ["--workers", str(args.workers), *overrides]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    began = time.perf_counter()
    started = [
        subprocess.Popen([*command, "--dir", str(work / name / str(i))], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        for i in range(processes)
    ]
    statuses = [p.wait() for p in started]
    seconds = time.perf_counter() - began
    trials = optuna.load_study(study_name=name, storage=open_storage(storage, work).storage).trials
    lrs = [t.params.get("model.optimizer.lr") for t in trials]
    return {
        "processes": processes,
        "failed processes": sum(s != 0 for s in statuses),
        "seconds": seconds,
        "trials/min": 60 * len(trials) / seconds,
        "trials": len(trials),
        "duplicates": len(lrs) - len(set(lrs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="the study's run_cap")
    parser.add_argument("--workers", type=int, default=1, help="--workers of each process")
    parser.add_argument("--storage", help="a database URL (default: a journal file per study)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for processes in (1, 2):
            row = run(processes, args, Path(folder))
            print("  ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
