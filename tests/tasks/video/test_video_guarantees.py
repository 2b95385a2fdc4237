"""The core's guarantees on this task's experiment (tiny.yaml): every split of the global batch, a SIGKILL, evaluate."""

from pathlib import Path

from lightning_template_core.testing import guarantee_tests

TestGuarantees = guarantee_tests(Path(__file__).with_name("tiny.yaml"))
