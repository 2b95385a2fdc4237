"""`export` of the language model: one step with its state, reloaded outside the project."""

from __future__ import annotations

from conftest import exported_round_trip


def test_export_round_trip_equals_the_checkpoint(fitted, tmp_path):
    assert exported_round_trip(fitted("lm"), "lm", "pt2", tmp_path) <= 1e-5
