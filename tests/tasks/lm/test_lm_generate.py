"""`generate` on the language model, run as a user runs it: reproducible text, notes, refusals."""

from __future__ import annotations

from lightning_template_core.testing import console_script, expect_user_error


def test_generate_is_reproducible_from_the_seed(fitted, tmp_path):
    checkpoint = fitted("lm").run_dir / "checkpoints" / "last.ckpt"
    texts = []
    for seed in (3, 3, 4):
        output = tmp_path / f"{len(texts)}.txt"
        done = console_script(
            "generate", f"ckpt_path={checkpoint}", "prompt=w1 w2 zzz", "words=30", f"seed={seed}", f"output={output}"
        )
        texts.append(output.read_text())
        assert texts[-1] in done.stdout and "zzz" in " ".join(done.stderr.split())
    assert texts[0] == texts[1] != texts[2]
    assert texts[0].split()[:2] == ["w1", "w2"] and len(texts[0].split()) == 2 + 30


def test_an_empty_prompt_is_refused(fitted):
    checkpoint = fitted("lm").run_dir / "checkpoints" / "last.ckpt"
    expect_user_error(console_script("generate", f"ckpt_path={checkpoint}", "prompt=", check=False), "prompt is empty")
