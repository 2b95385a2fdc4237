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
    table = [[cell.strip() for cell in line.split("|")[1:-1]] for line in done.stdout.splitlines() if line[:1] == "|"]
    assert table and table[0][0] == "task", done.stdout[-3000:]
    rows = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[2:]}
    assert set(tasks) <= set(rows), done.stdout[-3000:]
    for task in tasks:
        row = rows[task]
        ms = {side: float(row[f"ms/step {side}"]) for side in ("hand", "bare", "fit")}
        assert float(row["items/s fit"]) > 0 and all(value > 0 for value in ms.values()), row
        rounding = 0.001 + 0.1 / min(ms.values())  # the ratios come from the times before they are rounded
        for a, b in (("fit", "bare"), ("fit", "hand"), ("bare", "hand")):  # a / b: a's speed over b's
            assert float(row[f"{a} / {b}"]) == pytest.approx(ms[b] / ms[a], rel=rounding), (task, a, b, row)
        reads = row["host reads/step hand, bare, fit"].split(", ")
        assert len(reads) == 3, f"{task}: host reads of the three sides ({reads})"
        assert reads[2] == "0.00", f"{task}: the fit path reads the device back ({reads})"
    for side in ("hand", "bare", "fit"):  # each side ran as itself, every repeat
        assert sum(f"repeat 0: {side} " in line for line in done.stdout.splitlines()) == len(tasks), side
