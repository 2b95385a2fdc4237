"""The `export` command as a user runs it: the file loads in a fresh process without the project, same outputs."""

from __future__ import annotations

import importlib.util

import pytest

from lightning_template_core import export
from lightning_template_core._errors import UserError

from conftest import TASK, console_script, expect_user_error, exported_round_trip


@pytest.mark.parametrize("fmt", ["pt2", "torchscript", "onnx"])  # onnx: run in onnxruntime
def test_export_round_trip_equals_the_checkpoint(fitted, tmp_path, fmt):
    assert exported_round_trip(fitted(TASK), TASK, fmt, tmp_path) <= 1e-5


def test_unknown_format_is_refused(fitted):
    checkpoint = fitted(TASK).run_dir / "checkpoints" / "last.ckpt"
    done = console_script("export", f"ckpt_path={checkpoint}", "format=zip", check=False)
    expect_user_error(done, "format=zip is not a valid setting: format takes one of pt2, torchscript, onnx")


def test_onnx_without_its_packages_names_the_extra(monkeypatch):
    """An environment without onnxscript (the core install): one paragraph naming the extra, before any work."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(
        UserError, match=r"format=onnx needs onnxscript, not installed here: pip install -e '\.\[onnx\]'"
    ):
        export._check_format("onnx")
    export._check_format("pt2")  # the other formats need nothing more
