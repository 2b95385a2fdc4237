"""The test kit on a task that is none of the template's (tests/kit_task: weighted points, an MLP): its guarantee
tests pass where the task keeps the promise, and fail naming the cause where it does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ddp]

KIT_TASK = Path(__file__).with_name("kit_task")
# a project's test of its task: the one line the kit asks for, with the task's tiny settings
PROJECT_TEST = """
from lightning_template_core.testing import guarantee_tests

TestGuarantees = guarantee_tests({overrides!r})
"""


def run_kit(tmp_path: Path, overrides: list[str], *pytest_args: str) -> subprocess.CompletedProcess:
    """The kit's guarantee tests on ``overrides`` of the points task, run by pytest as a project runs them."""
    (tmp_path / "test_points.py").write_text(PROJECT_TEST.format(overrides=["experiment=points", *overrides]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(PYTHONPATH=str(KIT_TASK), LIGHTNING_TEMPLATE_CONFIGS=str(KIT_TASK / "configs"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rootdir", "."]
    command += ["-p", "lightning_template_core.testing.plugin", "test_points.py", *pytest_args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)


def test_a_task_that_keeps_the_promise_passes_every_guarantee_test(tmp_path):
    done = run_kit(tmp_path, [])
    assert done.returncode == 0, done.stdout[-6000:]
    assert "3 passed" in done.stdout


@pytest.mark.parametrize(
    ("overrides", "cause"),
    [
        (["model.net.norm=batch"], "BatchNorm"),
        (["model=points_micro_mean"], "does not return self.global_mean"),
    ],
    ids=["batch_norm", "loss_per_micro_batch"],
)
def test_a_task_that_breaks_the_promise_fails_naming_the_cause(tmp_path, overrides, cause):
    done = run_kit(tmp_path, overrides, "-k", "every_split")
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout[-6000:]
    assert "verify found a split that trains another model" in done.stdout
    assert cause in " ".join(done.stdout.split()), done.stdout[-6000:]
