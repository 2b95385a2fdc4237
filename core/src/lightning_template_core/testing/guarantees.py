"""The guarantees, as tests of one experiment: a project gets them for a task of its own by one line.

::

    # tests/tasks/<task>/test_<task>_guarantees.py
    TestGuarantees = guarantee_tests(Path(__file__).with_name("tiny.yaml"))

Each test runs the real commands in processes of their own on the experiment the tiny
settings give (``overrides:`` in the YAML file, a list of Hydra overrides that start with
``experiment=<name>``): ``verify`` (every split of the global batch trains the same model,
and a run stopped and resumed ends bit-identical), ``fit`` killed by SIGKILL and continued
(bit-identical to a run that never stopped, on the experiment's own schedule, callbacks
and loggers, and logging the same rows), and ``evaluate`` (the test metrics ``fit`` reported). ``accept:`` in the file
lists the causes ``verify`` may accept for this task (``batch_norm``), each only where its
own re-run without it is exact. A broken promise fails naming its cause (``verify``'s
"Why" and "What to change").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from lightning_template_core.testing.commands import Completed, max_abs_difference, run_command, run_module

KILL = "lightning_template_core.testing.stop_points.SignalAtStep"


def read_tiny(path: Path) -> tuple[list[str], list[str]]:
    """The ``overrides`` and ``accept`` lists of a task's tiny settings file."""
    spec = yaml.safe_load(Path(path).read_text()) or {}
    overrides = [*spec.get("overrides", []), "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    return overrides, list(spec.get("accept", []))


def guarantee_tests(tiny: Path | str | Sequence[str], accept: Sequence[str] | None = None) -> type:
    """A test class pytest collects: the guarantees on the experiment of ``tiny`` (a tiny.yaml, or overrides)."""
    if isinstance(tiny, (str, Path)):
        overrides, accepted = read_tiny(Path(tiny))
    else:
        overrides, accepted = list(tiny), []
    accepted = list(accept if accept is not None else accepted)

    @pytest.mark.slow
    @pytest.mark.ddp
    class GuaranteeTests:
        """The guarantees of lightning-template-core on one experiment (real processes, CPU)."""

        def test_every_split_of_the_global_batch_trains_the_same_model(self, tmp_path):
            run_dir = tmp_path / "verify"
            accepting = [f"verify.accept=[{','.join(accepted)}]"] if accepted else []
            run = run_command("verify", run_dir, *overrides, *accepting, check=False, timeout=1800)
            report = _verify_report(run)
            if run.returncode != 0:
                pytest.fail(f"verify found a split that trains another model:\n{_why(run)}", pytrace=False)
            assert report["resumed"] == 0.0

        def test_a_run_killed_by_sigkill_continues_to_the_same_weights_and_logs(self, tmp_path):
            """Killed after half its steps (resumed where the shipped callbacks wrote ``last.ckpt``), and, with a
            resume point at every step, before its last step (resumed inside an epoch where it has several)."""
            straight = run_command("fit", tmp_path / "straight", *overrides)
            steps = straight.summary()["global_steps"]
            assert steps >= 2, f"the tiny settings train {steps} step(s): give them at least 2"
            every_step = ["callbacks.model_checkpoint.every_n_train_steps=1"]
            for name, kill_at, extra in (("half", steps // 2 + 1, []), ("last", steps, every_step)):
                # the same command line twice, as a launcher that restarts it: the kill only in the run from scratch
                kill = [f"+callbacks.kill._target_={KILL}", f"+callbacks.kill.step={kill_at}"]
                kill += ["+callbacks.kill.signal_name=SIGKILL", "+callbacks.kill.from_scratch_only=true"]
                again = [*overrides, *extra, *kill, "ckpt_path=last"]
                killed = run_command("fit", tmp_path / name, *again, check=False)
                assert killed.returncode == -9, f"the run was to be killed at step {kill_at}:\n{killed.output[-3000:]}"
                continued = run_command("fit", tmp_path / name, *again)
                assert continued.summary()["global_steps"] == steps
                difference = max_abs_difference(straight.weights(), continued.weights())
                assert difference == 0.0, f"killed at step {kill_at}, the weights differ by {difference}"
                assert _logged(continued) == _logged(straight), f"killed at step {kill_at}, the logs differ"

        def test_evaluate_gives_the_test_metrics_fit_reported(self, tmp_path):
            run = run_command("fit", tmp_path / "run", *overrides, "test_after_fit=true")
            summary = run.summary()
            best = run.run_dir / "checkpoints" / Path(summary["best_checkpoint"] or "last.ckpt").name
            run_module("evaluate", f"ckpt_path={best}", run_dir=run.run_dir)
            evaluated = json.loads((run.run_dir / "eval.json").read_text())["metrics"]
            reported = summary["test"]
            assert reported and evaluated.keys() == reported.keys(), (evaluated, reported)
            worst = max(abs(evaluated[name] - reported[name]) for name in reported)
            assert worst <= 1e-9, f"evaluate and fit's test differ by {worst}: {evaluated} vs {reported}"

    return GuaranteeTests


def _logged(run: Completed) -> list[dict[str, str]] | None:
    """The run's CSV log (every row an epoch, a step or a validation logged, without the columns a row leaves
    empty), where its loggers keep one."""
    if not any(run.run_dir.rglob("metrics.csv")):
        return None
    return [{name: value for name, value in row.items() if value != ""} for row in run.metrics()]


def _verify_report(run: Completed) -> dict:
    path = run.run_dir / "verify.json"
    if run.returncode not in (0, 1) or not path.is_file():
        pytest.fail(f"verify could not run (exit {run.returncode}):\n{run.output[-6000:]}", pytrace=False)
    return json.loads(path.read_text())


def _why(run: Completed) -> str:
    """verify's explanation: from its "Why" to the end of what it printed."""
    start = run.stdout.find("Why")
    return run.stdout[start if start >= 0 else 0 :][-6000:]
