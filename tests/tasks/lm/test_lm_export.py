"""`export` of the language model: one step with its state, reloaded outside the project."""

from __future__ import annotations

import pytest

from lightning_template_core.testing.runs import exported_round_trip, tiny_overrides

TINY = tiny_overrides(__file__)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])  # onnx: run in onnxruntime
def test_export_round_trip_equals_the_checkpoint(fitted, tmp_path, fmt):
    assert exported_round_trip(fitted("lm"), fmt, tmp_path, TINY) <= 1e-5
