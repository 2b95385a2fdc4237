"""The test kit: the guarantees as tests of a project's own tasks, and the helpers its tests run commands with.

A project's test of a task gets the guarantee tests by one line (see :mod:`.guarantees`)::

    TestGuarantees = guarantee_tests(Path(__file__).with_name("tiny.yaml"))

The helpers run the real commands in processes of their own (:func:`run_command`,
:func:`console_script`) and read what they wrote (:class:`Completed`). The callbacks of
:mod:`.stop_points` meet a moment of a run exactly (a signal at a step, at a checkpoint write).
"""

from lightning_template_core.testing.commands import (
    Completed,
    command_environment,
    console_script,
    expect_user_error,
    max_abs_difference,
    run_command,
    run_module,
    set_command_runner,
)
from lightning_template_core.testing.guarantees import guarantee_tests, read_tiny

__all__ = [
    "Completed",
    "command_environment",
    "console_script",
    "expect_user_error",
    "guarantee_tests",
    "max_abs_difference",
    "read_tiny",
    "run_command",
    "run_module",
    "set_command_runner",
]
