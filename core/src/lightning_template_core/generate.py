"""The ``generate`` command: text sampled from a trained model of word sequences, reproducible from ``seed``.

generate ckpt_path=<run dir>/checkpoints/last.ckpt
generate ckpt_path=<file> prompt="the market" words=50 temperature=0.8 seed=3

Printed, and written to ``<run dir>/generated.txt``. How the model reads the prompt is
its task's (``tasks/<task>/inference.py``); words it does not know are noted.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from lightning_template_core._command_line.hydra_command import hydra_command
from lightning_template_core._errors import UserError, print_paragraph
from lightning_template_core._files.atomic import atomic_write_text
from lightning_template_core._runs.task_inference import Generated, inference_for
from lightning_template_core._runs.trained import load_trained, with_run_overrides
from lightning_template_core._stop_before_training import install as install_stop_handlers


def _checked(cfg: DictConfig) -> tuple[str | None, int, float]:
    prompt = cfg.get("prompt")
    if prompt is not None and not str(prompt).strip():
        raise UserError(
            'prompt is empty: give the words the text starts with (prompt="the market"), or leave prompt out to'
            " start from nothing."
        )
    return None if prompt is None else str(prompt), cfg.words, float(cfg.temperature)


def run_generate(cfg: DictConfig) -> Generated:
    """Sample ``cfg.words`` words after ``cfg.prompt`` from ``cfg.ckpt_path``; print and write the text."""
    prompt, words, temperature = _checked(cfg)
    hooks = inference_for(load_trained(cfg), cfg)
    generated = hooks.generate(prompt, words, temperature, torch.Generator().manual_seed(int(cfg.seed)))
    for note in generated.notes:
        print_paragraph("Note", note)
    output = Path(str(cfg.output))
    atomic_write_text(output, generated.text)
    print(generated.text, end="")
    print(f"\n(written to {output})")
    return generated


main = hydra_command("generate", with_run_overrides)(run_generate)

if __name__ == "__main__":
    install_stop_handlers()  # as the console script does, once this module is imported
    main()
