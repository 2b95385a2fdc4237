"""How the library reports: through ``logging``, so the application decides what is shown, and from rank 0 only.

The commands show these records (Hydra's job logging writes INFO and above to stdout, the
message alone); a program that builds runs in-process sees them only if it configures
logging. The commands' own tables and results are printed, not logged.
"""

from __future__ import annotations

import logging

from lightning.pytorch.utilities.rank_zero import rank_zero_only


class RankZeroLogger:
    """A module's logger whose records come from the process of rank 0 alone (every rank says the same)."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def info(self, message: str) -> None:
        if rank_zero_only.rank == 0:
            self.logger.info(message)

    def warning(self, message: str) -> None:
        if rank_zero_only.rank == 0:
            self.logger.warning(message)
