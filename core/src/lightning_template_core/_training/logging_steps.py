"""Which optimizer steps log: the only ones where a training step may read a device value back to the host.

Lightning writes step metrics to the loggers every ``trainer.log_every_n_steps`` optimizer
steps (every step under ``fast_dev_run``). A value computed on the host and logged at
every step (the learning rate, a token count) becomes a new device tensor each step,
and a value shown by a progress bar is read back each time it is shown; both are done
only at these steps.
"""

from __future__ import annotations

import lightning.pytorch as L


def logs_this_step(trainer: L.Trainer) -> bool:
    """Whether the optimizer step now running (any of its micro-batches) is one Lightning logs at."""
    return bool(trainer.fast_dev_run) or trainer._logger_connector.should_update_logs
