"""scripts/bench_step.py runs for every task (3 steps: its figures come from a quiet machine, docs/design.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, TINY_BY_TASK

pytestmark = pytest.mark.slow


def test_the_step_benchmark_prints_a_row_per_task_with_no_host_reads_on_the_fit_path():
    tasks = sorted(TINY_BY_TASK)
    done = subprocess.run(
        [sys.executable, "scripts/bench_step.py", "--smoke", "--tasks", *tasks],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        line.split("|")[1].strip(): line.split("|")[2:-1] for line in done.stdout.splitlines() if line.count("|") == 8
    }
    assert set(tasks) <= set(rows), done.stdout[-3000:]
    for task in tasks:
        rate, fit_ms, hand_ms, ratio, reads, _ = (cell.strip() for cell in rows[task])
        assert float(rate) > 0 and float(fit_ms) > 0 and float(hand_ms) > 0 and float(ratio) > 0
        assert reads.split(",")[0] == "0.00", f"{task}: the fit path reads the device back ({reads})"
