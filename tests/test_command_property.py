"""Every command, driven with generated settings and generated files, as real processes.

Whatever a user types and whatever file lies where a path points: the command succeeds
(exit 0) or says what is wrong in one paragraph (exit 2), never a traceback; and no file
of the trained run it touches changes unless the command succeeded, where it may add its
own outputs (a fit continuing the run may change it: that is what a continuation is).
The examples are fixed (``derandomize``), so CI runs the same ones every time; a run with
``--hypothesis-seed`` and ``derandomize`` off explores others.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lightning_template_core._errors import EXIT_USER_ERROR

from conftest import TASK, TINY_BY_TASK, run_module
from test_resume import files_of

pytestmark = pytest.mark.slow  # a process per example

# What each command may add to its run when it succeeds (fit: anything, it continues the run)
OUTPUTS = {
    "evaluate": {"eval.json"},
    "predict": {"predictions.csv"},
    "generate": {"generated.txt"},
    "export": {"export"},
}

SMALL_INTEGERS = st.sampled_from(["-1", "0", "1", "3", "100000"])
NUMBERS = st.sampled_from(["-1.0", "0", "0.5", "1.0", "1e9", "nan", "inf"])
WORDS = st.sampled_from(["abc", "''", "[1,2]", "{a:1}", "null", "true"])
# a place: {name} is replaced by a generated file or folder of that name (see _places)
PLACES = st.sampled_from(
    ["{missing}", "{folder}", "{under_a_file}", "{inputs}", "{new_file}", "{garbage}", "{empty}", "{truncated}"]
)
SETTINGS = {
    "evaluate": {"split": st.one_of(st.sampled_from(["val", "test", "train"]), WORDS)},
    "predict": {
        "input": PLACES,
        "top_k": st.one_of(SMALL_INTEGERS, WORDS),
        "batch_size": st.one_of(SMALL_INTEGERS, WORDS),
        "output": PLACES,
    },
    "generate": {
        "prompt": st.sampled_from(["the", "'zzz qqq'", "' '", "null"]),
        "words": st.one_of(SMALL_INTEGERS, WORDS),
        "temperature": st.one_of(NUMBERS, WORDS),
        "output": PLACES,
    },
    "export": {"format": st.sampled_from(["pt2", "torchscript", "zip", "null"]), "output_dir": PLACES},
    "fit": {
        "trainer.max_steps": st.one_of(SMALL_INTEGERS, WORDS),
        "data.global_batch_size": st.one_of(SMALL_INTEGERS, WORDS),
        "model.optimizer.lr": st.one_of(NUMBERS, WORDS),
        "seed": st.one_of(SMALL_INTEGERS, WORDS),
    },
}
# every command takes these too (a fit on several devices is tested by its own DDP tests)
COMMON = {"ckpt_path": st.one_of(st.just("{checkpoint}"), PLACES)}
INFERENCE_COMMON = {"trainer.devices": st.one_of(SMALL_INTEGERS, WORDS)}


def _places(work: Path, checkpoint: Path) -> dict[str, str]:
    """Files and folders as a user may point at them: good ones, damaged ones, and ones in the way."""
    work.mkdir()
    (work / "a-file").write_text("in the way\n")
    inputs = work / "inputs"
    inputs.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(inputs / "a.png")
    (inputs / "words.txt").write_text("the market rose\n")
    (inputs / "noise.bin").write_bytes(np.random.default_rng(1).bytes(500))
    (work / "garbage.ckpt").write_bytes(np.random.default_rng(2).bytes(1000))
    (work / "empty").write_bytes(b"")
    whole = checkpoint.read_bytes()
    (work / "truncated.ckpt").write_bytes(whole[: len(whole) // 2])
    return {
        "checkpoint": str(checkpoint),
        "missing": str(work / "missing"),
        "folder": str(work),
        "under_a_file": str(work / "a-file" / "x"),
        "inputs": str(inputs),
        "new_file": str(work / "new" / "out.txt"),
        "garbage": str(work / "garbage.ckpt"),
        "empty": str(work / "empty"),
        "truncated": str(work / "truncated.ckpt"),
    }


@st.composite
def settings_of(draw, command: str) -> dict[str, str]:
    choices = {**SETTINGS[command], **COMMON, **({} if command == "fit" else INFERENCE_COMMON)}
    keys = draw(st.lists(st.sampled_from(sorted(choices)), min_size=1, max_size=3, unique=True))
    return {key: draw(choices[key]) for key in keys}


@pytest.mark.parametrize("command", sorted(SETTINGS))
def test_any_command_line_exits_0_or_2_without_a_traceback_and_leaves_the_run_as_it_was(
    fitted, tmp_path_factory, command
):
    trained = fitted(TASK)

    @settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(chosen=settings_of(command))
    def check(chosen: dict[str, str]) -> None:
        work = tmp_path_factory.mktemp("example")
        run_dir = work / "run"
        shutil.copytree(trained.run_dir, run_dir)
        places = _places(work / "files", run_dir / "checkpoints" / "last.ckpt")
        arguments = [f"{key}={places.get(value[1:-1], value)}" for key, value in chosen.items()]
        if command == "fit":  # a continuation of the run: its overrides, its directory, its last checkpoint
            given = {argument.split("=", 1)[0] for argument in arguments}
            run_overrides = [o for o in TINY_BY_TASK[TASK] if o.split("=", 1)[0] not in given]
            arguments = [*run_overrides, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}", *arguments]
            if "ckpt_path" not in given:
                arguments.append("ckpt_path=last")
        elif "ckpt_path" not in chosen:
            arguments.append(f"ckpt_path={places['checkpoint']}")
        if command == "predict" and "input" not in chosen:
            arguments.append(f"input={places['inputs']}")
        before = files_of(run_dir)
        done = run_module(command, *arguments, run_dir=run_dir, check=False, timeout=300)
        shown = f"{command} {' '.join(arguments)}\n{done.output[-4000:]}"
        assert done.returncode in (0, EXIT_USER_ERROR), shown
        assert "Traceback" not in done.output, shown
        if done.returncode == EXIT_USER_ERROR:
            assert "Error:" in done.stderr, shown
        if done.returncode != 0 or command != "fit":
            after = files_of(run_dir)
            changed = [path for path in before if after.get(path) != before[path]]
            added = [path for path in after if path not in before]
            allowed = OUTPUTS.get(command, set()) if done.returncode == 0 else set()
            assert not changed, f"changed {changed}: {shown}"
            assert all(path.relative_to(run_dir).parts[0] in allowed for path in added), f"added {added}: {shown}"

    check()
