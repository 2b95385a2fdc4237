"""When a DDP rank dies, the others say which one and where to resume, and exit instead of hanging."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import NoReturn

import lightning.pytorch as L
import torch
from lightning.fabric.plugins.environments import LightningEnvironment
from lightning.pytorch.callbacks import Callback

from lightning_template_core._batching.distributed import gather_from_ranks
from lightning_template_core._errors import print_paragraph

# sysexits' EX_UNAVAILABLE: a peer process is gone; the run can continue from its checkpoint
EXIT_LOST_RANK = 69

# what gloo and NCCL say when a peer's connection drops or a collective times out
_LOST_PEER = re.compile(r"connection (closed|reset|refused)|broken pipe|timed out|timeout|nccl|gloo", re.IGNORECASE)
# gloo's and NCCL's messages start with the C++ source line that raised them
_SOURCE_LINE = re.compile(r"\[[^\]\s]+\.(?:cc|cpp|cu|h|hpp):\d+\]\s*")

# how long Lightning's watch over its child processes leaves the main thread to notice a lost child and report
# it (the main thread notices at its next collective, within a step) before reporting from the watch
_REPORT_GRACE_SECONDS = 5.0

_STAGES = {
    "train": "during training",
    "sanity_check": "during the sanity check",
    "validate": "during validation",
    "test": "during testing",
    "predict": "during prediction",
}


def is_lost_peer_error(error: BaseException) -> bool:
    if isinstance(error, torch.distributed.DistError):
        return True
    return isinstance(error, RuntimeError) and bool(_LOST_PEER.search(str(error)))


def short_reason(error: BaseException, limit: int = 120) -> str:
    """The first sentence of what the backend said, without its C++ source location, at most ``limit`` characters."""
    text = " ".join(_SOURCE_LINE.sub("", str(error)).split())
    if not text:
        return type(error).__name__
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0] + " ..."
    return first


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host still runs (a zombie waiting to be reaped does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _ended_how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class ReportLostRank(Callback):
    """Turns a collective that fails because a rank died into one paragraph and exit status 69.

    Every rank knows where the other ranks of its host run: when a stage starts, the ranks
    exchange (host, pid); before that (a rank lost during set-up), the ranks Lightning
    launched know each other as parent and children. When a collective fails (gloo and
    NCCL notice a closed connection at once; a rank that hangs is caught by the process
    group timeout, ``ddp_timeout_seconds``), the survivors look up which ranks on their
    host are gone, name them and the newest checkpoint, and exit at once: Lightning's
    clean-up would call more collectives and wait on the dead rank.

    Lightning's launcher also watches the processes it started and, when one ends with
    an error, SIGKILLs every rank at once, often before rank 0 has said anything (exit
    status 137, no message). Its watch is made to leave rank 0 a few seconds to report,
    and to report itself if rank 0 has not by then (a step longer than that, or a backend
    that does not notice a dead peer).
    """

    def __init__(self) -> None:
        self._ranks: list[tuple[str, int]] = []
        self._parent = os.getppid()  # rank 0 of this host, for a rank Lightning's launcher started
        self._trainer: L.Trainer | None = None
        self._reporting = threading.Lock()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        self._watch_launched_ranks(trainer)
        if trainer.world_size > 1:
            self._ranks = gather_from_ranks((socket.gethostname(), os.getpid()))

    def _neighbours(self, trainer: L.Trainer) -> list[tuple[int, int]]:
        """(rank, pid) of the other ranks on this host."""
        me = trainer.global_rank
        if self._ranks:
            host = socket.gethostname()
            return [(r, pid) for r, (h, pid) in enumerate(self._ranks) if r != me and h == host]
        children = getattr(trainer.strategy.launcher, "procs", None) or []
        if children:  # rank 0 of the host, which started the others
            return [(me + i + 1, child.pid) for i, child in enumerate(children)]
        if trainer.local_rank > 0 and type(trainer.strategy.cluster_environment) is LightningEnvironment:
            return [(me - trainer.local_rank, self._parent)]
        return []

    def _lost_ranks(self, trainer: L.Trainer, patience: float = 3.0) -> list[int]:
        """Ranks on this host whose process is gone (a killed process closes its sockets before it is gone)."""
        neighbours = self._neighbours(trainer)
        deadline = time.monotonic() + patience
        while True:
            lost = [r for r, pid in neighbours if not process_alive(pid)]
            if lost or time.monotonic() > deadline:
                return lost
            time.sleep(0.1)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.world_size < 2 or not is_lost_peer_error(exception):
            return
        for signum in (signal.SIGTERM, signal.SIGINT):  # a launcher stopping this rank now would cut the report
            signal.signal(signum, signal.SIG_IGN)
        self._reporting.acquire()  # held until the process ends: one report per process
        lost = self._lost_ranks(trainer)
        if lost:
            who = f"DDP rank {', '.join(map(str, lost))} of {trainer.world_size} ended"
        else:
            who = f"Another DDP rank (of {trainer.world_size}) stopped answering"
        self._report(trainer, exception, f"{who} {self._stage(trainer)}", short_reason(exception))

    @staticmethod
    def _stage(trainer: L.Trainer) -> str:
        stage = trainer.state.stage
        return _STAGES.get(getattr(stage, "value", ""), "while setting up")

    def _report(self, trainer: L.Trainer, exception: BaseException, what: str, reason: str) -> NoReturn:
        bar = trainer.progress_bar_callback
        if bar is not None:  # a live progress bar holds stderr (the paragraph would be drawn into it) and the cursor
            bar.on_exception(trainer, trainer.lightning_module, exception)
        checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or ""
        resume = (
            f"Newest checkpoint: {checkpoint}. Continue with the same command plus ckpt_path=last (and the same"
            " hydra.run.dir)"
            if checkpoint
            else "No checkpoint was written yet: run the same command again"
        )
        print_paragraph(
            "Error",
            f"{what} at step {trainer.global_step} ({reason}); rank {trainer.global_rank} stops instead of waiting."
            f" {resume}, once the cause is fixed (out of memory, a failed node, a killed process).",
        )
        for logger in trainer.loggers:
            logger.finalize("failed")
        os._exit(EXIT_LOST_RANK)

    def _watch_launched_ranks(self, trainer: L.Trainer) -> None:
        """Make Lightning's watch over the ranks it launched leave this rank time to report a lost one."""
        try:
            from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
        except ImportError:  # another Lightning: its own handling stays
            return
        for thread in threading.enumerate():
            if isinstance(thread, _ChildProcessObserver) and "_run" not in vars(thread):
                children: list[subprocess.Popen] = thread._child_processes

                def look(children: list[subprocess.Popen] = children) -> bool:
                    """One look at the children, every few seconds; True once there is nothing more to watch."""
                    ended = [child.poll() for child in children]
                    if all(code == 0 for code in ended):
                        return True
                    if any(ended):
                        self._child_ended(children)
                        return True
                    return False

                thread._run = look

    def _child_ended(self, children: list[subprocess.Popen]) -> None:
        """In Lightning's watch thread, once a launched rank has ended with an error."""
        deadline = time.monotonic() + _REPORT_GRACE_SECONDS
        while time.monotonic() < deadline:  # the main thread's report ends the process meanwhile
            time.sleep(0.1)
        if not self._reporting.acquire(blocking=False):
            return  # the main thread is reporting
        trainer = self._trainer
        first = trainer.global_rank + 1 if trainer is not None else 1
        ended = [(first + i, child) for i, child in enumerate(children) if child.poll()]
        for child in children:
            if child.poll() is None:
                child.kill()  # the others would wait on the lost rank (Lightning's watch killed them too)
        if trainer is None or all(child.returncode == EXIT_LOST_RANK for _, child in ended):
            os._exit(EXIT_LOST_RANK)  # those ranks ended on a lost rank and said which: a second report would mislead
        who = ", ".join(str(rank) for rank, _ in ended)
        how = "; ".join(f"rank {rank}: {_ended_how(child.returncode)}" for rank, child in ended)
        what = f"DDP rank {who} of {trainer.world_size} ended {self._stage(trainer)}"
        self._report(trainer, ChildProcessError(how), what, how)
