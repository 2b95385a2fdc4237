"""Which checkpoint a run resumes from: ``ckpt_path=<file>``, or ``ckpt_path=last`` for the run directory's newest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_template_core._errors import UserError
from lightning_template_core._reporting import RankZeroLogger

log = RankZeroLogger(__name__)

CONTINUE = "last"


@dataclass(frozen=True)
class ResumePoint:
    path: Path
    global_step: int


def read_resume_point(path: Path) -> ResumePoint:
    """The checkpoint at ``path`` if it is a complete training checkpoint; a UserError saying why not otherwise."""
    if path.is_dir():
        raise UserError(
            f"ckpt_path={path} is a directory. Give a checkpoint file (e.g. {path}/checkpoints/last.ckpt), or"
            " ckpt_path=last with hydra.run.dir set to the run's directory."
        )
    if not path.is_file():
        raise UserError(
            f"ckpt_path={path} does not exist. Give the path of a checkpoint written by an earlier run"
            " (e.g. <run dir>/checkpoints/last.ckpt), or drop ckpt_path to start from scratch."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # torch raises several types for a file it cannot read
        raise UserError(
            f"ckpt_path={path} could not be read as a checkpoint ({type(err).__name__}: {str(err)[:200]})."
            " It may be truncated (a disk that filled up, a copy cut short): use an earlier checkpoint of the run."
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "loops" not in checkpoint:
        raise UserError(
            f"ckpt_path={path} is not a full Lightning training checkpoint (no model or loop state): resume"
            " needs a checkpoint written by fit, not a weights-only file."
        )
    return ResumePoint(path, int(checkpoint.get("global_step", 0)))


def newest_resume_point(run_dir: Path) -> ResumePoint | None:
    """The run's complete checkpoint with the most optimizer steps; damaged newer ones are skipped, with a warning."""
    directory = run_dir / "checkpoints"
    points, damaged = [], []
    for path in directory.glob("*.ckpt"):
        try:
            points.append(read_resume_point(path))
        except UserError as err:
            damaged.append((path, err))
    if not points:
        if damaged:
            reasons = " ".join(str(err) for _, err in damaged)
            raise UserError(f"No checkpoint in {directory} can be read, so the run cannot continue. {reasons}")
        return None
    best = max(points, key=lambda point: (point.global_step, point.path.stat().st_mtime))
    for path, err in damaged:
        log.warning(f"Skipping the damaged checkpoint {path} ({err}); continuing from {best.path} instead.")
    return best


def holds_a_run(run_dir: Path) -> bool:
    """A checkpoint or a finished run's summary; what a start that failed before its first checkpoint
    left (config, logs) does not count: the corrected command starts there."""
    return (run_dir / "summary.json").is_file() or any((run_dir / "checkpoints").glob("*.ckpt"))


def resolve_resume_point(ckpt_path: str | None, run_dir: Path, check_run_dir: bool = True) -> ResumePoint | None:
    """What ``ckpt_path`` resumes from; where ``check_run_dir``, refuse to start a second run in ``run_dir``.

    Only one process checks the run directory: under DDP the others start once it has
    written the run's config there.
    """
    if ckpt_path == CONTINUE:
        if check_run_dir:  # files a process killed while writing left behind (never read as checkpoints)
            for partial in (run_dir / "checkpoints").glob(".*.partial-*"):
                partial.unlink(missing_ok=True)
        point = newest_resume_point(run_dir)
        if point is None:
            log.info(f"ckpt_path=last: no checkpoint in {run_dir / 'checkpoints'} yet, starting from scratch.")
        else:
            log.info(f"ckpt_path=last: continuing from {point.path} (step {point.global_step}).")
        return point
    point = None if ckpt_path is None else read_resume_point(Path(ckpt_path).expanduser())
    if check_run_dir:
        refuse_a_second_run(run_dir, point)
    return point


def refuse_a_second_run(run_dir: Path, resume_from: ResumePoint | None) -> None:
    """A UserError if ``run_dir`` holds a run that this one would not continue."""
    continues_it = resume_from is not None and resume_from.path.resolve().is_relative_to(run_dir.resolve())
    if holds_a_run(run_dir) and not continues_it:
        raise UserError(
            f"hydra.run.dir={run_dir} already holds a run (its checkpoints or summary.json): continue it with"
            " ckpt_path=last, or give this run another hydra.run.dir. Nothing was changed there."
        )
