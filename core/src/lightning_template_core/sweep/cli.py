"""The ``sweep`` command: search batch size, learning rate or any setting, one ``fit`` per trial.

sweep <name> --n-trials 20                    # configs/sweep/<name>.yaml as an Optuna study in runs/sweeps/<name>/
sweep <name> --n-trials 8 --workers 2 trainer.max_epochs=1   # re-run to add trials; overrides for every trial
sweep <name> trainer=ddp_cpu trainer.devices=2               # each trial a 2-process DDP run
sweep <name> trainer=gpu --gpus-per-trial 1                   # one trial per GPU of this machine
sweep <name> --storage postgresql://user:pw@host/db           # a study shared by sweeps on many machines
sweep <name> --storage journal:/shared/sweeps/lr.log          # the same on a shared file system
sweep <name> --report                                         # the table, best.json and plot; no trial
sweep <name> --check                          # validate the file, overrides and metric, run nothing
sweep <name> --backend wandb --count 20       # a W&B sweep from the same file, with an agent here
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from lightning_template_core._command_line.hydra_command import CONFIG_DIR
from lightning_template_core._errors import report_user_errors
from lightning_template_core.sweep.composition import check_against_fit, sample_points
from lightning_template_core.sweep.kfold import check_kfold
from lightning_template_core.sweep.optuna_sweep import PRUNERS, SweepOptions, run_study
from lightning_template_core.sweep.report import write_report
from lightning_template_core.sweep.spec import fit_command_line, load_spec


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="sweep",
        description=__doc__.split("\n\n")[0],
        epilog="Sweep configs are W&B sweep files in configs/sweep/ (or any path); see docs/sweep.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ", ".join(sorted(path.stem for path in (CONFIG_DIR / "sweep").glob("*.yaml")))
    parse.add_argument("config", help=f"a sweep config: a name in configs/sweep/ ({names}) or a path")
    parse.add_argument("overrides", nargs="*", help="fit overrides for every trial, e.g. trainer.max_epochs=1")
    parse.add_argument("--backend", choices=("optuna", "wandb"), default="optuna")
    parse.add_argument("--check", action="store_true", help="validate the config, overrides and metric; run no trial")
    local = parse.add_argument_group("optuna backend")
    local.add_argument("--dir", type=Path, help="sweep directory (default runs/sweeps/<config name>)")
    local.add_argument("--n-trials", type=int, help="trials to add (default: up to run_cap, or the whole grid)")
    local.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    local.add_argument(
        "--workers", type=int, help="trials at once, each its own fit process (default 1; GPUs / --gpus-per-trial)"
    )
    local.add_argument("--gpus-per-trial", type=int, help="give each concurrent trial its own GPUs, this many")
    local.add_argument("--pruner", choices=PRUNERS, default="auto", help="auto: the file's early_terminate")
    local.add_argument("--seed", type=int, default=0, help="the sampler's seed (each trial's: from it and its number)")
    local.add_argument(
        "--storage",
        help="the study: sqlite:///<file>, postgresql://..., mysql://..., journal:<file> (default <dir>/study.db)",
    )
    local.add_argument("--study-name", help="the study's name in the storage (default: the sweep file's name)")
    local.add_argument(
        "--stale-after",
        type=float,
        default=120.0,
        help="seconds without a heartbeat after which a running trial is taken as lost and continued (default 120)",
    )
    local.add_argument("--report", action="store_true", help="write the report from the study; run no trial")
    remote = parse.add_argument_group("wandb backend")
    remote.add_argument(
        "--count", type=int, help="trials for the agent started here (default: until the end; 0: create the sweep only)"
    )
    remote.add_argument("--project", help="W&B project")
    remote.add_argument("--entity", help="W&B entity (user or team)")
    remote.add_argument("--sweep-id", help="join an existing W&B sweep instead of creating one")
    return parse


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@report_user_errors
def run(argv: list[str] | None = None) -> int:
    args = parser().parse_intermixed_args(argv)
    spec = load_spec(args.config)
    check_against_fit(spec, args.overrides)
    check_kfold(spec)
    if args.check:
        print(f"{spec.path}: valid. A trial runs, for example:")
        print(fit_command_line(spec.overrides(next(sample_points(spec)), args.overrides)))
        return 0
    if args.backend == "wandb":
        from lightning_template_core.sweep.wandb_sweep import run_wandb_sweep

        run_wandb_sweep(spec, args.overrides, args.count, args.project, args.entity, args.sweep_id)
        return 0
    sweep_dir = args.dir or Path("runs") / "sweeps" / spec.name
    options = SweepOptions(
        n_trials=0 if args.report else args.n_trials,
        timeout=args.timeout,
        workers=args.workers,
        pruner=args.pruner,
        seed=args.seed,
        storage=args.storage,
        study_name=args.study_name,
        gpus_per_trial=args.gpus_per_trial,
        stale_after=args.stale_after,
    )
    # SIGTERM (a scheduler's preemption or time limit) ends the sweep as Ctrl-C does: each running trial's fit
    # saves its state and the trial is queued again, so the next sweep on the study continues it at once
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        study = run_study(spec, sweep_dir, args.overrides, options)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted: the running trials saved their state and are queued again. Run the same command to"
            f" continue the study ({sweep_dir}).",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    best = write_report(study, spec, sweep_dir)
    return 0 if best is not None else 1


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
