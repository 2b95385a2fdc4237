"""`export` of the video classifier, reloaded in a fresh process outside the project."""

from __future__ import annotations

from conftest import exported_round_trip


def test_export_round_trip_equals_the_checkpoint(fitted, tmp_path):
    assert exported_round_trip(fitted("video"), "video", "pt2", tmp_path) <= 1e-5
