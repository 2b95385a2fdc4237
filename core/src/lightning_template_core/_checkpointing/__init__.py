"""Checkpoints a run can always resume from exactly: written atomically, at optimizer steps, on stop signals."""

from lightning_template_core._checkpointing.atomic_io import AtomicCheckpointIO, atomic_torch_save
from lightning_template_core._checkpointing.locate import CONTINUE, ResumePoint, resolve_resume_point
from lightning_template_core._checkpointing.lost_rank import ReportLostRank
from lightning_template_core._checkpointing.resume_state import ResumeState
from lightning_template_core._checkpointing.run_checkpoint import RunCheckpoint
from lightning_template_core._checkpointing.stop_signals import StopOnSignal

__all__ = [
    "CONTINUE",
    "AtomicCheckpointIO",
    "ReportLostRank",
    "ResumePoint",
    "ResumeState",
    "RunCheckpoint",
    "StopOnSignal",
    "atomic_torch_save",
    "resolve_resume_point",
]
