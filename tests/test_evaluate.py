"""The `evaluate` command as a user runs it: a checkpoint fit wrote, the console script, the numbers fit reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lightning_template_core import evaluate
from lightning_template_core._runs.trained import with_run_overrides

from conftest import TASK, TINY_BY_TASK, console_script, expect_user_error
from test_resume import files_of

OTHER_TASK = next((task for task in TINY_BY_TASK if task != TASK), None)


def test_the_runs_overrides_come_first_and_the_users_replace_them(tmp_path):
    (tmp_path / ".hydra").mkdir()
    saved = ["experiment=x", "trainer=ddp_cpu", "trainer.devices=2", "data.root=a", "seed=3"]
    (tmp_path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    user = ["--cfg", "job", f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}", "trainer=cpu", "data.root=b"]
    argv = with_run_overrides(user)
    assert argv == ["--cfg", "job", "experiment=x", "seed=3", f'hydra.run.dir="{tmp_path}"', *user[2:]]
    assert with_run_overrides(argv) == argv  # a DDP process, started with this command line, adds nothing
    assert with_run_overrides(["experiment=y", user[2]]) == [f'hydra.run.dir="{tmp_path}"', "experiment=y", user[2]]
    assert with_run_overrides(["ckpt_path=/elsewhere/last.ckpt"]) == ["ckpt_path=/elsewhere/last.ckpt"]


@pytest.mark.parametrize("damage", ["key: [unclosed\n", "just a word\n", b"\xff\xfe"])
def test_a_damaged_overrides_file_is_one_paragraph_naming_it(tmp_path, capsys, damage):
    """Read before Hydra runs, by the command line's rewrite (the run's overrides go first)."""
    saved = tmp_path / ".hydra" / "overrides.yaml"
    saved.parent.mkdir()
    saved.write_bytes(damage if isinstance(damage, bytes) else damage.encode())
    with pytest.raises(SystemExit) as exited:
        evaluate.main.check_arguments([f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}"])
    assert exited.value.code == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"{saved} is damaged" in error and "experiment=<name>" in error


def _evaluated(run, *overrides: str) -> dict[str, float]:
    """``evaluate`` on ``run``'s best checkpoint (a copy of a shared run: evaluate writes into its run)."""
    best = str(run.run_dir / "checkpoints" / Path(run.summary()["best_checkpoint"]).name)
    done = console_script("evaluate", f"ckpt_path={best}", *overrides)
    assert "evaluate: test" in done.stdout
    result = json.loads((run.run_dir / "eval.json").read_text())
    assert result["checkpoint"] == best and result["split"] == "test"
    return result["metrics"]


def _assert_same(evaluated: dict[str, float], reported: dict[str, float]) -> None:
    assert evaluated.keys() == reported.keys() and reported
    assert max(abs(evaluated[name] - reported[name]) for name in reported) <= 1e-9, (evaluated, reported)


@pytest.mark.parametrize("task", list(TINY_BY_TASK))
def test_evaluate_gives_the_test_metrics_fit_reported(fitted, shared_runs, task, tmp_path):
    run = shared_runs.copy(fitted(task), tmp_path / "run")
    saved_config = (run.run_dir / ".hydra" / "config.yaml").read_text()
    _assert_same(_evaluated(run), run.summary()["test"])
    assert (run.run_dir / ".hydra" / "config.yaml").read_text() == saved_config  # the run's own is left as it was


@pytest.mark.slow
@pytest.mark.ddp
@pytest.mark.parametrize("task", list(TINY_BY_TASK))
def test_evaluate_on_two_processes_gives_the_same_metrics(fitted, shared_runs, task, tmp_path):
    run = shared_runs.copy(fitted(task), tmp_path / "run")
    _assert_same(_evaluated(run, "trainer=ddp_cpu", "trainer.devices=2"), run.summary()["test"])


def test_validation_split_gives_the_best_monitored_score(fitted, shared_runs, tmp_path):
    run = shared_runs.copy(fitted(TASK), tmp_path / "run")
    summary = run.summary()
    best = run.run_dir / "checkpoints" / Path(summary["best_checkpoint"]).name
    console_script("evaluate", f"ckpt_path={best}", "split=val")
    metrics = json.loads((run.run_dir / "eval.json").read_text())["metrics"]
    assert abs(metrics[summary["monitor"]] - summary["best_score"]) <= 1e-6  # the checkpoint saved it as float32


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["ckpt_path is not set"]),
        (["ckpt_path=/nonexistent/best.ckpt"], ["ckpt_path=/nonexistent/best.ckpt does not exist"]),
        (["split=train"], ["split=train is not a valid setting: split takes one of val, test"]),
    ],
)
def test_bad_input_gets_one_paragraph(fitted, tmp_path, args, fragments):
    if args == ["split=train"]:
        args = [f"ckpt_path={fitted(TASK).run_dir / 'checkpoints' / 'last.ckpt'}", *args]
    done = console_script("evaluate", *args, f"hydra.run.dir={tmp_path}", check=False)  # for its log
    expect_user_error(done, *fragments)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_text("not a checkpoint")
    done = console_script("evaluate", f"ckpt_path={bad}", f"hydra.run.dir={tmp_path}", check=False)
    expect_user_error(done, "could not be read as a checkpoint")


@pytest.mark.slow
@pytest.mark.skipif(OTHER_TASK is None, reason="needs a second task")
def test_a_checkpoint_of_another_task_is_refused(fitted):
    checkpoint = fitted(TASK).run_dir / "checkpoints" / "last.ckpt"
    other_experiment = TINY_BY_TASK[OTHER_TASK][0]  # tiny.yaml starts with experiment=<name>
    done = console_script("evaluate", f"ckpt_path={checkpoint}", other_experiment, check=False)
    expect_user_error(
        done, f"was written by experiment={TASK}, whose model is", "drop experiment= to use the checkpoint's run's own"
    )


@pytest.mark.slow
@pytest.mark.skipif(OTHER_TASK is None, reason="needs a second task")
@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_a_checkpoint_of_another_task_placed_in_a_run_directory_names_the_experiment_that_wrote_it(
    fitted, shared_runs, tmp_path, command
):
    run = shared_runs.copy(fitted(TASK), tmp_path / "run")
    placed = run.run_dir / "checkpoints" / "last.ckpt"
    placed.write_bytes((fitted(OTHER_TASK).run_dir / "checkpoints" / "last.ckpt").read_bytes())
    before = files_of(run.run_dir)
    done = console_script(command, f"ckpt_path={placed}", check=False)
    expect_user_error(done, f"was written by experiment={OTHER_TASK}", f"is of experiment={TASK}")
    assert files_of(run.run_dir) == before


def test_a_quoted_checkpoint_path_with_a_space_is_read_as_hydra_reads_it(fitted, shared_runs, tmp_path):
    """``'ckpt_path="<run dir>/checkpoints/last.ckpt"'``, as a path with a space must be given: the run's own
    config is found (its network), the metrics are fit's."""
    run = shared_runs.copy(fitted(TASK), tmp_path / "my runs" / "run 1")
    best = run.run_dir / "checkpoints" / Path(run.summary()["best_checkpoint"]).name
    console_script("evaluate", f'ckpt_path="{best}"')
    _assert_same(json.loads((run.run_dir / "eval.json").read_text())["metrics"], run.summary()["test"])
