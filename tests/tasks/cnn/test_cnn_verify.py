"""`verify` on the image classifier: dropout named and confirmed, and a network of the user's own."""

from __future__ import annotations

import textwrap

import pytest

from lightning_template_core.testing.runs import tiny_overrides, verify

TINY = tiny_overrides(__file__)

pytestmark = [pytest.mark.slow, pytest.mark.ddp]

CNN = TINY


def test_dropout_is_named_and_its_re_run_without_it_is_exact(tmp_path):
    run, report = verify(tmp_path / "verify", *CNN, "model.net.norm=group", "model.net.dropout=0.3")
    assert run.returncode == 1 and not report["layouts_exact"]
    assert [s["cause"] for s in report["suspects"]] == ["dropout"]
    assert "p=0.3" in report["suspects"][0]["found"]
    (ablation,) = report["ablations"]
    assert ablation["switches"] == ["model.net.dropout=0"] and max(ablation["differences"].values()) <= 1e-9
    assert "confirmed: with model.net.dropout=0 every layout is exact" in " ".join(run.stdout.split())


OWN_NET = """
    from torch import nn


    class OwnNet(nn.Module):
        def __init__(self, num_classes, in_channels, norm="batch", widths=(8,), dropout=0.0):
            super().__init__()
            width = widths[0]
            norm_layer = nn.BatchNorm2d(width) if norm == "batch" else nn.GroupNorm(2, width)
            self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), norm_layer, nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

        def forward(self, images):
            return self.head(self.features(images))
"""


def test_a_network_of_the_users_own_is_verified_and_an_accepted_cause_confirmed_passes(tmp_path, monkeypatch):
    """A module outside the package (by model.net._target_): its BatchNorm named by its own module names,
    switched off through its own norm argument; accepted, the run passes (exit 0)."""
    (tmp_path / "own_nets.py").write_text(textwrap.dedent(OWN_NET))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    run, report = verify(tmp_path / "verify", *CNN, "model.net._target_=own_nets.OwnNet", "verify.accept=[batch_norm]")
    assert run.returncode == 0, run.output[-6000:]
    assert not report["layouts_exact"] and report["passes"]
    (suspect,) = report["suspects"]
    assert suspect["cause"] == "batch_norm" and "net.features.1 (BatchNorm2d)" in suspect["found"]
    assert "passes: the layouts differ only through batch_norm" in run.stdout
