"""`verify` on the language model as shipped: every layout and the resume exact, exit status 0."""

from __future__ import annotations

import pytest

from conftest import TINY_BY_TASK
from test_verify import verify

pytestmark = [pytest.mark.slow, pytest.mark.ddp]


def test_the_shipped_language_model_verifies_exact(tmp_path):
    run, report = verify(tmp_path / "verify", *TINY_BY_TASK["lm"])
    assert run.returncode == 0, run.output[-6000:]
    assert report["layouts_exact"] and report["resumed"] == 0.0
    assert max(report["differences"].values()) <= 1e-9 and not report["suspects"]
    assert "Result: exact" in run.stdout
