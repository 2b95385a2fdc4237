"""`export` of the video classifier, reloaded in a fresh process outside the project."""

from __future__ import annotations

import pytest

from conftest import exported_round_trip


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])  # onnx: run in onnxruntime
def test_export_round_trip_equals_the_checkpoint(fitted, tmp_path, fmt):
    assert exported_round_trip(fitted("video"), "video", fmt, tmp_path) <= 1e-5
