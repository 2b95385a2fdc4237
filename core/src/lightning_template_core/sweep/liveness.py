"""Trials whose worker died: found by a missed heartbeat, marked failed, and tried again where they stopped.

A running trial's worker records the time in the trial every ``stale_after / 4`` seconds.
A trial still running with no sign of life for ``stale_after`` seconds lost its worker
(killed, preempted, its machine gone): the next process that looks marks it failed and
queues a retry with the same parameters, which continues the trial's own ``fit`` from its
run directory (``ckpt_path=last``) instead of starting over. Optuna's own heartbeat is
not used: its journal storage has none, and its retry starts the trial from nothing.
Times are each machine's clock: keep the machines' clocks within a few seconds.
"""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

HEARTBEAT = "heartbeat"  # user attr: the worker's last sign of life (seconds since the epoch)
RETRY_OF = "retry_of"  # user attr of a retry: the number of the trial it continues
# what a retry keeps of the lost trial's user attrs: where it runs and what it runs
KEPT = ("run_dir", "overrides")


class Heartbeat:
    """While the block runs, record every ``interval`` seconds that the trial's worker is alive."""

    def __init__(self, trial: Trial, interval: float) -> None:
        self.trial, self.interval = trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial.number}", daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                self.trial.set_user_attr(HEARTBEAT, time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # told already (or taken over by another process after a long stall)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def original_number(trial: Trial | FrozenTrial) -> int:
    """The trial a retry continues (its run directory), or the trial itself."""
    return trial.user_attrs.get(RETRY_OF, trial.number)


def last_sign_of_life(trial: FrozenTrial) -> float:
    started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(trial.user_attrs.get(HEARTBEAT, started), started)


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue the same trial again: the next worker continues its ``fit`` in the same run directory."""
    user_attrs = {key: trial.user_attrs[key] for key in KEPT if key in trial.user_attrs}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={**user_attrs, RETRY_OF: original_number(trial)},
            system_attrs=trial.system_attrs,  # a grid trial keeps its grid point
        )
    )


def fail_and_retry(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Mark ``trial`` failed with ``reason`` and queue its retry (under the study's lock where another process
    could be taking the same trial over: a lost trial; a worker's own interrupted trial has a fresh heartbeat)."""
    study._storage.set_trial_user_attr(trial._trial_id, "error", reason)
    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    retry(study, trial)


def reclaim_lost_trials(study: optuna.Study, stale_after: float) -> list[int]:
    """Fail and retry every running trial without a heartbeat for ``stale_after`` seconds; their numbers."""
    now = time.time()
    lost = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if now - last_sign_of_life(t) > stale_after
    ]
    for trial in lost:
        silent = now - last_sign_of_life(trial)
        reason = f"its worker sent no heartbeat for {silent:.0f} s (killed or preempted); retried where it stopped"
        fail_and_retry(study, trial, reason)
    return [t.number for t in lost]
