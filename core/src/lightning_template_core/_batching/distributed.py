"""The few collective operations the batching core and checkpoints need, no-ops outside DDP."""

from __future__ import annotations

from typing import Any

import torch


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def this_rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def gather_from_ranks(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (just ``[obj]`` outside DDP)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered
