"""Every task's embedded experiment runs end to end: one batch of each split (the CI smoke job).

The real-data experiments have theirs beside the tests of their readers, on files written
in the real formats (also marked smoke).
"""

from __future__ import annotations

import pytest

from lightning_template_core._callbacks.monitor_history import history_path, metric_names, read_history
from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._training.declared_metrics import validation_metrics

from conftest import TINY_BY_TASK

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("task", list(TINY_BY_TASK))
def test_fast_dev_run(fit, task):
    run = fit(*TINY_BY_TASK[task], "debug=fast_dev_run")
    assert "fit summary" in run.stdout
    summary = run.summary()
    assert summary["experiment"] == task and summary["global_steps"] == 1
    assert any(name.startswith("test/") for name in summary["test"])
    assert all(value == value for value in summary["test"].values())  # tested, no NaN
    # what the module declares it logs at validation (checked against monitor before a run) is what it logs;
    # its training metrics: test_fit_cli.py (fast_dev_run keeps no logs)
    logged = [name for name in metric_names(read_history(history_path(run.run_dir))) if not name.startswith("train/")]
    assert sorted(logged) == sorted(validation_metrics(compose_fit(TINY_BY_TASK[task])))
