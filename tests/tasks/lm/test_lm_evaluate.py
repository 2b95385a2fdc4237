"""`evaluate` of a language model on a folder of text: its perplexity, read with the model's vocabulary."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from test_text_data import write_corpus

from lightning_template_core.testing import console_script, run_command
from lightning_template_core.testing.runs import tiny_overrides

TINY = tiny_overrides(__file__)


def _evaluated(run, checkpoint: str, *overrides: str) -> dict[str, float]:
    console_script("evaluate", f"ckpt_path={checkpoint}", *overrides)
    return json.loads((run.run_dir / "eval.json").read_text())["metrics"]


@pytest.mark.slow
def test_evaluate_on_a_text_folder_gives_its_perplexity(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    tiny_model = [arg for arg in TINY if arg.startswith(("model.", "data.bptt", "data.eval"))]
    run = run_command(
        "fit",
        tmp_path / "run",
        "experiment=lm_ptb",
        f"data.root={corpus}",
        *tiny_model,
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    )
    best = run.summary()["best_checkpoint"]
    fitted = run.summary()["test"]

    # the same test text beside a training file whose words come in another order: read with the
    # folder's own vocabulary the ids would mean other words; read with the model's, nothing changes
    reordered = tmp_path / "reordered"
    shutil.copytree(corpus, reordered)
    (reordered / "train.txt").write_text("".join(reversed((corpus / "train.txt").read_text().splitlines(True))))
    same = _evaluated(run, best, f"data.root={reordered}")
    assert max(abs(same[name] - value) for name, value in fitted.items() if name in ("test/loss", "test/ppl")) <= 1e-9

    other = _evaluated(run, best, f"data.root={write_corpus(tmp_path / 'other', seed=1)}")
    assert math.isfinite(other["test/ppl"]) and other["test/ppl"] != fitted["test/ppl"]
    assert abs(other["test/ppl"] - math.exp(other["test/loss"])) <= 1e-9 * other["test/ppl"]
