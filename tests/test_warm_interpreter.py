"""The warm interpreter serves every test's commands, and only those it can run as a fresh one would."""

from __future__ import annotations

from warm_interpreter import import_time_differences


def test_a_command_of_another_test_or_with_its_own_run_time_settings_runs_warm():
    server = {"PATH": "/bin", "PYTEST_CURRENT_TEST": "tests/test_a.py::test_one (call)", "OMP_NUM_THREADS": "1"}
    command = {**server, "PYTEST_CURRENT_TEST": "tests/test_b.py::test_two (call)", "WANDB_MODE": "disabled"}
    assert import_time_differences(server, command) == []


def test_a_setting_that_torch_reads_when_it_is_imported_starts_a_fresh_interpreter():
    server = {"PATH": "/bin", "OMP_NUM_THREADS": "1"}
    assert import_time_differences(server, {**server, "OMP_NUM_THREADS": "2"}) == ["OMP_NUM_THREADS"]
    assert import_time_differences(server, {"PATH": "/bin"}) == ["OMP_NUM_THREADS"]
