"""The ``sweep`` command: search batch size, learning rate or any setting, one ``fit`` per trial.

sweep <name> --n-trials 20                    # configs/sweep/<name>.yaml as an Optuna study in runs/sweeps/<name>/
sweep <name> --n-trials 8 --workers 2 trainer.max_epochs=1   # re-run to add trials; overrides for every trial
sweep <name> trainer=ddp_cpu trainer.devices=2               # each trial a 2-process DDP run
sweep <name> --check                          # validate the file, overrides and metric, run nothing
sweep <name> --backend wandb --count 20       # a W&B sweep from the same file, with an agent here
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_template.command_line.hydra_command import CONFIG_DIR
from lightning_template.errors import report_user_errors
from lightning_template.sweep.composition import check_against_fit, sample_points
from lightning_template.sweep.optuna_sweep import DB_NAME, PRUNERS, SweepOptions, run_study
from lightning_template.sweep.report import write_report
from lightning_template.sweep.spec import fit_command_line, load_spec


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
    local.add_argument("--workers", type=int, default=1, help="trials at once (each its own fit process)")
    local.add_argument("--pruner", choices=PRUNERS, default="auto", help="auto: the file's early_terminate")
    local.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    remote = parse.add_argument_group("wandb backend")
    remote.add_argument("--count", type=int, help="trials for the agent started here (default: until the end)")
    remote.add_argument("--project", help="W&B project")
    remote.add_argument("--entity", help="W&B entity (user or team)")
    remote.add_argument("--sweep-id", help="join an existing W&B sweep instead of creating one")
    return parse


@report_user_errors
def run(argv: list[str] | None = None) -> int:
    args = parser().parse_intermixed_args(argv)
    spec = load_spec(args.config)
    check_against_fit(spec, args.overrides)
    if args.check:
        print(f"{spec.path}: valid. A trial runs, for example:")
        print(fit_command_line(spec.overrides(next(sample_points(spec)), args.overrides)))
        return 0
    if args.backend == "wandb":
        from lightning_template.sweep.wandb_sweep import run_wandb_sweep

        run_wandb_sweep(spec, args.overrides, args.count, args.project, args.entity, args.sweep_id)
        return 0
    sweep_dir = args.dir or Path("runs") / "sweeps" / spec.name
    options = SweepOptions(args.n_trials, args.timeout, args.workers, args.pruner, args.seed)
    print(f"Sweep {spec.name} ({spec.method}, {spec.goal} {spec.metric}) in {sweep_dir / DB_NAME}", flush=True)
    try:
        study = run_study(spec, sweep_dir, args.overrides, options)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Run the same command again to continue the study in {sweep_dir}.", file=sys.stderr)
        return 130
    best = write_report(study, spec, sweep_dir)
    return 0 if best is not None else 1


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
