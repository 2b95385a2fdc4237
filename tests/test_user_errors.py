"""Every user mistake: one paragraph naming the setting or file, exit status 2, no traceback, no run claimed.

Mistakes in the command line are caught before Hydra makes the run directory, so for
those nothing at all is written; the table checks them in-process, through the very
function each console script runs before Hydra (``main.check_arguments``), and runs one
of them per command through the real console script. The mistakes found later (a
checkpoint, a file) run the real console scripts. The property test throws wrong-typed
values at the documented keys through the same check.
"""

from __future__ import annotations

import importlib
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from lightning_template_core._command_line.compose import check_command_line
from lightning_template_core._command_line.config_dirs import group_options
from lightning_template_core._command_line.hydra_command import compose_fit, compose_job
from lightning_template_core._command_line.optional_packages import missing_modules
from lightning_template_core._command_line.settings import RULES, check_settings
from lightning_template_core._errors import UserError, _user_error_in
from lightning_template_core._runs.assembly import build_run

from conftest import CONFIG_DIR, ROOT, TASK, TINY, TINY_BY_TASK, Completed, console_script, expect_user_error


def _typed_tiny_key() -> str:
    """A setting of the task's tiny experiment that takes an integer and is not in the documented table."""
    return next(
        o.split("=")[0] for o in TINY if o.split("=")[-1].isdigit() and o.split("=")[0] not in RULES and "." in o
    )


def _reshaping_overrides() -> list[str]:
    """The tiny experiment's network sizes, all doubled (so that sizes that must agree still do): the same
    network with other weight shapes."""
    sizes = [o for o in TINY if o.startswith("model.net.") and any(c.isdigit() for c in o)]
    return [
        f"{o.split('=', 1)[0]}=" + re.sub(r"\d+", lambda m: str(2 * int(m.group())), o.split("=", 1)[1]) for o in sizes
    ]


OTHER_TASK = next((task for task in TINY_BY_TASK if task != TASK), None)

# (command, arguments, fragments the message must hold, whether the run directory may exist at all);
# a case that may not write is refused before Hydra runs, and is checked in-process but for CONSOLE_RUNS
CASES = [
    ("fit", ["model.optimizer.lr=fast"], ["model.optimizer.lr=fast", "a number greater than 0"], False),
    ("fit", ["model.optimizer.lr=fast", "lr_scaling=linear"], ["model.optimizer.lr=fast"], False),
    ("fit", ["model.optimizer.lr=-0.1"], ["model.optimizer.lr=-0.1"], False),
    ("fit", ["seed=abc"], ["seed=abc", "an integer"], False),
    ("fit", ["trainer.max_steps=ten"], ["trainer.max_steps=ten", "an integer"], False),
    ("fit", ["trainer.max_steps=0"], ["trainer.max_steps=0", "-1"], False),
    ("fit", ["trainer.max_steps=-1", "trainer.max_epochs=-1"], ["no end"], False),
    ("fit", ["trainer.precision=33"], ["trainer.precision=33", "bf16-mixed"], False),
    ("fit", ["lr_scaling=cubic"], ["lr_scaling=cubic", "linear"], False),
    ("fit", [*TINY, f"{_typed_tiny_key()}=abc"], [f"{_typed_tiny_key()}=abc", "an integer"], False),
    ("fit", ["~seed"], ["seed is missing"], False),
    ("fit", ["seed=[1,"], ["not valid Hydra syntax"], False),
    # the shipped callbacks' own settings, checked with the others before training
    (
        "fit",
        ["callbacks=[ema,early_stopping]", "callbacks.early_stopping.monitor=val/never_logged"],
        ["callbacks.early_stopping.monitor=val/never_logged is not a metric this model logs"],
        False,
    ),
    ("fit", ["callbacks=early_stopping", "callbacks.early_stopping.patience=-1"], ["patience=-1"], False),
    ("fit", ["callbacks=ema", "callbacks.ema.decay=1.5"], ["callbacks.ema.decay=1.5", "from 0.0 to 1.0"], False),
    # a trainer setting only the data can refuse (Lightning's ValueError, once the loaders exist)
    (
        "fit",
        [*TINY, "trainer.val_check_interval=1000", "trainer.check_val_every_n_epoch=1"],
        ["trainer.*", "val_check_interval", "(1000) must be less than or equal to the number of the training batches"],
        True,
    ),
    ("fit", ["experiment=nope"], ["experiment=nope is not an option", TASK], False),
    ("fit", ["data=nope"], ["data=nope is not an option"], False),
    ("fit", ["logger=null"], ["logger=null", "~logger"], False),
    ("fit", ["data.global_batch_sise=32"], ["data.global_batch_sise", "Did you mean data.global_batch_size?"], False),
    ("fit", ["+data.global_batch_sise=32"], ["data.global_batch_sise", "did you mean data.global_batch_size?"], False),
    ("fit", ["monitor=val/accuracy"], ["monitor=val/accuracy", "logs"], False),
    ("fit", ["monitor=train/accuracy"], ["monitor=train/accuracy", "while it trains", "train/lr"], False),
    ("fit", ["ckpt_path={missing}"], ["does not exist"], True),
    ("fit", ["ckpt_path={trained_run}"], ["is a directory"], True),
    ("fit", [*TINY, *_reshaping_overrides(), "ckpt_path={trained_ckpt}"], ["differ in shape"], True),
    ("fit", ["hydra.run.dir={a_file}/run"], ["hydra.run.dir=", "cannot be used as a run directory"], True),
    ("tune", ["seed=abc"], ["seed=abc"], False),
    ("tune", ["tune.lr_min=1", "tune.lr_max=0.1"], ["tune.lr_min=1 is not below tune.lr_max=0.1"], False),
    ("tune", ["tune.steps_per_trial=0"], ["tune.steps_per_trial=0", "an integer of at least 1"], False),
    ("predict", ["top_k=0"], ["top_k=0", "an integer of at least 1"], False),
    ("predict", ["batch_size=-3"], ["batch_size=-3", "an integer of at least 1"], False),
    ("generate", ["words=0"], ["words=0", "an integer of at least 1"], False),
    ("generate", ["temperature=0"], ["temperature=0", "a number greater than 0"], False),
    ("export", ["format=zip"], ["format=zip", "pt2, torchscript, onnx"], False),
    ("verify", ["verify.global_batch_size=6"], ["verify.global_batch_size=6", "a multiple of 4"], False),
    ("verify", ["verify.accept=[batchnorm]"], ["verify.accept=[batchnorm]", "batch_norm, dropout, loss"], False),
    ("evaluate", ["ckpt_path={missing}"], ["ckpt_path=", "does not exist"], True),
    ("evaluate", ["ckpt_path={trained_ckpt}", "split=train"], ["split"], True),
    ("predict", ["ckpt_path={trained_ckpt}", "input={missing}"], [], True),
    ("export", ["ckpt_path={trained_ckpt}", "output_dir={a_file}/export"], ["output_dir=", "is a file, not"], True),
    (
        "export",
        ["ckpt_path={trained_ckpt}", "output_dir=/proc/no-export"],
        ["output_dir=/proc/no-export", "/proc"],
        True,
    ),
]
# a tracker whose package this environment lacks (tensorboard is no test dependency): refused naming its extra
MISSING_TRACKER = next((extra for extra in ("tensorboard", "mlflow", "wandb") if missing_modules(extra)), None)
if MISSING_TRACKER is not None:
    CASES.append(("fit", [f"logger={MISSING_TRACKER}"], [f"logger.{MISSING_TRACKER}", f".[{MISSING_TRACKER}]"], False))
if OTHER_TASK is not None:  # a checkpoint of another task's experiment
    CASES.append(
        (
            "fit",
            [*TINY_BY_TASK[OTHER_TASK], "ckpt_path={trained_ckpt}"],
            [f"was written by experiment={TASK}", f"experiment={OTHER_TASK}"],
            True,
        )
    )


# The command-line mistakes also run through the real console script: one per command
CONSOLE_RUNS = {"fit": ["model.optimizer.lr=fast"], "tune": ["seed=abc"], "verify": ["verify.global_batch_size=6"]}


def check_in_process(command: str, arguments: list[str], capsys) -> Completed:
    """What ``command``'s console script does with ``arguments`` before Hydra runs, in this process."""
    main = importlib.import_module(f"lightning_template_core.{command}").main
    try:
        main.check_arguments(list(arguments))
        status = 0
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return Completed(status, captured.out, captured.err, ROOT)


def runs_console_script(command: str, arguments: list[str], writes: bool) -> bool:
    return writes or CONSOLE_RUNS.get(command) == arguments


@pytest.mark.parametrize(
    ("command", "arguments", "fragments", "writes"),
    [
        pytest.param(*case, marks=[pytest.mark.slow] if runs_console_script(case[0], case[1], case[3]) else [])
        for case in CASES  # a process per console-script case: slow
    ],
    ids=lambda v: str(v)[-40:],
)
def test_each_mistake_exits_2_with_one_paragraph_naming_it(
    command, arguments, fragments, writes, tmp_path, request, capsys
):
    (tmp_path / "a-file").write_text("not a folder\n")
    places = {"missing": str(tmp_path / "no-such-file.ckpt"), "a_file": str(tmp_path / "a-file")}
    if any("{trained_" in argument for argument in arguments):
        run_dir = request.getfixturevalue("fitted")().run_dir  # read, never written: the cases are refused
        places |= {"trained_run": str(run_dir), "trained_ckpt": str(run_dir / "checkpoints" / "last.ckpt")}
    run_dir = tmp_path / "run"
    chooses_dir = command in ("evaluate", "predict") or any(a.startswith("hydra.run.dir=") for a in arguments)
    given_dir = [] if chooses_dir else [f"hydra.run.dir={run_dir}"]
    line = [*[a.format(**places) for a in arguments], *given_dir]
    if runs_console_script(command, arguments, writes):
        run = console_script(command, *line, check=False)
    else:
        run = check_in_process(command, line, capsys)
    expect_user_error(run, *fragments)
    assert run.stderr.count("Error:") == 1, run.stderr[-3000:]
    if not writes:
        assert not run_dir.exists(), "a mistake in the command line must stop the run before it writes"
    for claim in ("summary.json", "eval.json", "predictions.csv", "checkpoints"):
        assert not (run_dir / claim).exists(), claim


def test_every_shipped_experiment_passes_the_checks():
    """The checks refuse mistakes, not the shipped configs (each experiment, each trainer preset)."""
    for experiment in sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")):
        check_command_line(str(CONFIG_DIR), "fit", [f"experiment={experiment}"], check_settings)
    for trainer in group_options("trainer"):
        check_command_line(str(CONFIG_DIR), "fit", [f"trainer={trainer}"], check_settings)
    check_command_line(str(CONFIG_DIR), "tune", [], check_settings)


# Documented keys that take no text: a word is always the wrong type for them.
TYPED_KEYS = sorted(key for key, rule in RULES.items() if not rule.accepts("someword"))
WORDS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12).filter(
    lambda word: (
        word.lower() not in {"true", "false", "null", "nan", "inf", "auto", "warn", "norm", "value"}
        and word not in {"min", "max", "none", "linear", "sqrt", "bf16"}
    )
)
WRONG_VALUES = st.one_of(
    WORDS,
    st.lists(WORDS, min_size=1, max_size=3).map(lambda words: "[" + ",".join(words) + "]"),
    st.dictionaries(WORDS, st.integers(), min_size=1, max_size=2).map(
        lambda d: "{" + ",".join(f"{k}:{v}" for k, v in d.items()) + "}"
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(TYPED_KEYS), value=WRONG_VALUES)
def test_a_wrong_typed_value_of_a_documented_key_is_a_user_error(key, value):
    with pytest.raises(UserError) as refused:
        check_command_line(str(CONFIG_DIR), "fit", [f"{key}={value}"], check_settings)
    assert key in str(refused.value)


def test_the_property_test_covers_the_documented_keys():
    """A negative control for the sampling: the typed keys include the ones the issue names."""
    assert {"seed", "trainer.max_steps", "model.optimizer.lr", "data.global_batch_size"} <= set(TYPED_KEYS)


def test_null_is_taken_where_the_target_takes_none():
    """``monitor=null`` is a ModelCheckpoint setting (keep the newest files); ``mode=null`` is not."""
    check_command_line(str(CONFIG_DIR), "fit", ["callbacks.model_checkpoint.monitor=null"], check_settings)
    with pytest.raises(UserError, match=r"callbacks\.model_checkpoint\.mode=null"):
        check_command_line(str(CONFIG_DIR), "fit", ["callbacks.model_checkpoint.mode=null"], check_settings)


def _numeric_settings(task: str) -> list[tuple[str, type]]:
    """The numbers and lists of integers under ``data`` and ``model`` of the task's tiny experiment."""
    found = []

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}"
            if str(key).startswith("_") or isinstance(value, bool):
                continue
            if OmegaConf.is_dict(value):
                walk(value, name)
            elif isinstance(value, (int, float)):
                found.append((name, type(value)))
            elif OmegaConf.is_list(value) and all(isinstance(v, int) for v in value):
                found.append((name, list))

    cfg = compose_fit(TINY_BY_TASK[task])
    walk(cfg.data, "data")
    walk(cfg.model, "model")
    return found


def _value(kind: type):
    if kind is list:
        return st.lists(st.integers(-1, 20), max_size=3).map(lambda v: "[" + ",".join(map(str, v)) + "]")
    if kind is int:
        return st.sampled_from([-1, 0, 1, 2, 3, 7, 100]).map(str)
    return st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 1e9]).map(str)


@pytest.mark.slow  # about a second per example: a Trainer and the tiny data are built each time
@pytest.mark.parametrize("task", sorted(TINY_BY_TASK))
def test_generated_settings_build_a_run_or_are_one_paragraph(task):
    """Any number or size a task's data or network takes, as a user might type it: the command line's check
    refuses it, or the run is built (data described, network made, trainer set), or a UserError names it.
    Never another exception, which the command would show as a traceback."""
    settings_of_task = _numeric_settings(task)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def check(data) -> None:
        key, kind = data.draw(st.sampled_from(settings_of_task))
        overrides = [*TINY_BY_TASK[task], f"{key}={data.draw(_value(kind))}"]
        try:
            check_command_line(str(CONFIG_DIR), "fit", overrides, check_settings)
            build_run(compose_job(overrides, Path("/nonexistent/run")))  # nothing is written: the run is only built
        except Exception as err:
            if _user_error_in(err) is None:
                raise

    check()
