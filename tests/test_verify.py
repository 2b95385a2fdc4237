"""`verify`: a real run of the command on the core task, and how its verdict follows from what it measured."""

from __future__ import annotations

import json
import math

import pytest

from lightning_template_core._verification.causes import Suspect
from lightning_template_core._verification.layouts import LAYOUTS, REFERENCE
from lightning_template_core._verification.report import Ablation, Outcome

from conftest import TINY, Completed, console_script

OTHER_LAYOUTS = [layout.name for layout in LAYOUTS if layout is not REFERENCE]


def verify(run_dir, *overrides: str) -> tuple[Completed, dict]:
    run = console_script("verify", *overrides, f"hydra.run.dir={run_dir}", check=False)
    assert run.returncode in (0, 1), run.output[-6000:]
    assert "Traceback" not in run.output, run.output[-6000:]
    return run, json.loads((run_dir / "verify.json").read_text())


@pytest.mark.slow
@pytest.mark.ddp
def test_verify_compares_every_layout_and_the_resume_and_its_exit_status_is_its_verdict(tmp_path):
    """On the core task as shipped: each layout measured, the resume bit-identical, and where a layout differs,
    the report names a cause that its own re-run without it confirms (true of every shipped task)."""
    run, report = verify(tmp_path / "verify", *TINY)
    assert set(report["differences"]) == set(OTHER_LAYOUTS)
    assert all(not math.isnan(d) for d in report["differences"].values()), run.output[-6000:]
    assert report["resumed"] == 0.0
    assert run.returncode == (0 if report["passes"] else 1)
    for layout in OTHER_LAYOUTS:
        assert layout in run.stdout
    if not report["layouts_exact"]:
        assert report["suspects"] and "Why" in run.stdout and "What to change" in run.stdout
        assert any(all(d <= 1e-9 for d in a["differences"].values()) for a in report["ablations"]), run.stdout


def outcome(differences: dict[str, float], suspects=(), ablations=(), accepted=(), resumed=0.0) -> Outcome:
    return Outcome(
        experiment="x",
        steps=5,
        global_batch_size=16,
        differences=differences,
        resumed=resumed,
        resumed_from=2,
        suspects=list(suspects),
        ablations=list(ablations),
        accepted=tuple(accepted),
        unseen=(),
        output_dir="runs",
    )


EXACT = dict.fromkeys(OTHER_LAYOUTS, 1e-16)
DIFFERENT = dict.fromkeys(OTHER_LAYOUTS, 0.3)
NORM = Suspect("batch_norm", "net.bn (BatchNorm2d)", "model.net.norm=group", "use group")
DROPOUT = Suspect("dropout", "net.drop (Dropout, p=0.3)", "model.net.dropout=0", "accept it")


def test_exact_layouts_and_an_exact_resume_pass():
    assert outcome(EXACT).passes()
    assert not outcome(EXACT, resumed=1e-3).passes()
    assert not outcome(EXACT, resumed=float("nan")).passes()  # a resumed run that failed
    assert not outcome({**EXACT, OTHER_LAYOUTS[0]: float("nan")}).passes()  # a layout's run that failed
    assert outcome(EXACT, resumed=None).passes()  # a config that keeps no checkpoints: not checked, said


def test_an_accepted_cause_passes_only_where_switching_it_off_makes_every_layout_exact():
    norm_off = Ablation(("batch_norm",), ("model.net.norm=group",), EXACT)
    assert not outcome(DIFFERENT, [NORM], [norm_off]).passes()  # not accepted
    assert outcome(DIFFERENT, [NORM], [norm_off], accepted=["batch_norm"]).passes()
    not_enough = Ablation(("batch_norm",), ("model.net.norm=group",), DIFFERENT)
    assert not outcome(DIFFERENT, [NORM], [not_enough], accepted=["batch_norm"]).passes()
    # two causes: accepting one is not enough where only both switched off make it exact
    both_off = Ablation(("batch_norm", "dropout"), ("model.net.norm=group", "model.net.dropout=0"), EXACT)
    ablations = [not_enough, Ablation(("dropout",), ("model.net.dropout=0",), DIFFERENT), both_off]
    assert not outcome(DIFFERENT, [NORM, DROPOUT], ablations, accepted=["batch_norm"]).passes()
    assert outcome(DIFFERENT, [NORM, DROPOUT], ablations, accepted=["batch_norm", "dropout"]).passes()
    # an accepted cause with no switch cannot be confirmed
    unswitchable = Suspect("batch_norm", "net.bn (BatchNorm1d)", None, "use group")
    assert not outcome(DIFFERENT, [unswitchable], [], accepted=["batch_norm"]).passes()
