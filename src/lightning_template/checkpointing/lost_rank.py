"""When a DDP rank dies, the others say which one and where to resume, and exit instead of hanging."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_template.batching.distributed import gather_from_ranks, this_rank
from lightning_template.errors import print_paragraph

# sysexits' EX_UNAVAILABLE: a peer process is gone; the run can continue from its checkpoint
EXIT_LOST_RANK = 69

# what gloo and NCCL say when a peer's connection drops or a collective times out
_LOST_PEER = re.compile(r"connection (closed|reset|refused)|broken pipe|timed out|timeout|nccl|gloo", re.IGNORECASE)


def is_lost_peer_error(error: BaseException) -> bool:
    if isinstance(error, torch.distributed.DistError):
        return True
    return isinstance(error, RuntimeError) and bool(_LOST_PEER.search(str(error)))


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


class ReportLostRank(Callback):
    """Turns a collective that fails because a rank died into one paragraph and exit status 69.

    Every rank records where each rank runs (host, pid) when training starts. When a
    collective fails (gloo and NCCL notice a closed connection at once; a rank that hangs
    is caught by the process group timeout, ``ddp_timeout_seconds``), the survivors look
    up which ranks on their host are gone, name them and the newest checkpoint, and exit
    at once: Lightning's clean-up would call more collectives and wait on the dead rank.
    """

    def __init__(self) -> None:
        self._ranks: list[tuple[str, int]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ranks = gather_from_ranks((socket.gethostname(), os.getpid()))

    def _lost_ranks(self, patience: float = 3.0) -> list[int]:
        """Ranks on this host whose process is gone (a killed process closes its sockets before it is gone)."""
        host, me = socket.gethostname(), this_rank()
        neighbours = [(r, pid) for r, (h, pid) in enumerate(self._ranks) if r != me and h == host]
        deadline = time.monotonic() + patience
        while True:
            lost = [r for r, pid in neighbours if not process_alive(pid)]
            if lost or time.monotonic() > deadline:
                return lost
            time.sleep(0.1)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.world_size < 2 or not self._ranks or not is_lost_peer_error(exception):
            return
        for signum in (signal.SIGTERM, signal.SIGINT):  # a launcher stopping this rank now would cut the report
            signal.signal(signum, signal.SIG_IGN)
        lost = self._lost_ranks()
        if lost:
            who = f"DDP rank {', '.join(map(str, lost))} of {trainer.world_size} ended"
        else:
            who = f"Another DDP rank (of {trainer.world_size}) stopped answering"
        checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none written yet"
        detail = str(exception).strip().splitlines()[0][:160] if str(exception).strip() else type(exception).__name__
        print_paragraph(
            "Error",
            f"{who} during training at step {trainer.global_step} ({detail}); rank {this_rank()} stops instead of"
            " waiting."
            f" Newest checkpoint: {checkpoint}. Continue with the same command plus ckpt_path=last (and the same"
            " hydra.run.dir), once the cause is fixed (out of memory, a failed node, a killed process).",
        )
        for logger in trainer.loggers:
            logger.finalize("failed")
        os._exit(EXIT_LOST_RANK)
