"""The docs say only what exists: every command line in their code blocks names real commands, configs and keys.

Each line of a code block that starts with a command (a console script, ``.venv/bin/<script>``,
``python -m <package>.<module>`` or ``make <target>``) is read as the shell would split it:
the command must be installed or importable, each ``group=option`` must name a config file,
each ``key=value`` a key of the config the line composes, each ``--flag`` a flag of the
command. Placeholders (``<name>``, ``...``) stand for anything and are skipped.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from lightning_template_core._command_line.config_dirs import config_dirs, find_config
from lightning_template_core.sweep.cli import parser as sweep_parser

from conftest import CONFIG_DIR, ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
CORE = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text())["project"]
SCRIPTS = CORE["scripts"]  # console script -> lightning_template_core._console:<command>
PACKAGE = next(iter(SCRIPTS.values())).split(".")[0]
HYDRA_COMMANDS = {name for name in SCRIPTS if find_config(f"{name}.yaml") is not None}
MAKE_TARGETS = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
GROUPS = {path.name for folder in config_dirs() for path in folder.iterdir() if path.is_dir()}


@dataclass(frozen=True)
class CommandLine:
    page: str
    number: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.number}: {self.text}"


def code_block_lines(page: Path) -> list[tuple[int, str]]:
    lines, inside = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            lines.append((number, line))
    return lines


COMMAND = re.compile(rf"^\s*(?:\.venv/bin/)?(?:{'|'.join(SCRIPTS)}|python -m {PACKAGE}\.\w+|make \w+)(?=\s|$)")


def documented_command_lines() -> list[CommandLine]:
    found = []
    for page in PAGES:
        for number, line in code_block_lines(page):
            code = line.strip()
            if COMMAND.match(code) and not re.match(r"^\S+:", code):  # "evaluate: test" is output
                found.append(CommandLine(str(page.relative_to(ROOT)), number, code))
    return found


LINES = documented_command_lines()


def words_of(line: CommandLine) -> list[str]:
    """The line as the shell splits it, comments dropped; a placeholder (``<run dir>``) is one word."""
    return shlex.split(re.sub(r"<[^>]*>", "<x>", line.text), comments=True)


def placeholder(word: str) -> bool:
    return "<x>" in word or word == "..."


def command_of(words: list[str]) -> tuple[str, list[str]]:
    """(command name, its arguments): the console script, ``python -m`` module or make target."""
    if words[:2] == ["python", "-m"]:
        module = words[2]
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
        name = module.split(".")[-1]
        assert module == f"{PACKAGE}.{name}" and name in SCRIPTS, f"{module} is no command's twin"
        return name, words[3:]
    return words[0].removeprefix(".venv/bin/"), words[1:]


@functools.cache
def compose_line(command: str, overrides: tuple[str, ...]):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(command, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def check_overrides(command: str, arguments: list[str]) -> None:
    """Each ``group=option`` is a config file and each ``key=value`` a key of what the line composes."""
    choices, keys = [], []
    for argument in arguments:
        if placeholder(argument) or argument.startswith("-"):
            continue
        key, _, value = argument.partition("=")
        assert value, f"{argument} is not key=value"
        if key.startswith("+") or (placeholder(value) and key in GROUPS):
            continue  # a config added from elsewhere (+tuned=...), or any option of a group
        if key in GROUPS:
            assert find_config(f"{key}/{value}.yaml"), f"{key}={value}: no {key}/{value}.yaml in the configs"
            choices.append(argument)
        else:
            keys.append(key)
    cfg = compose_line(command, tuple(choices))
    for key in keys:
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
        assert node is not None and name in node, f"{key} is not a key of {command}"


@pytest.mark.parametrize("line", LINES, ids=str)
def test_a_documented_command_line_names_what_exists(line):
    words = words_of(line)
    if words[0] == "make":
        assert words[1] in MAKE_TARGETS, f"make {words[1]}: no such target in the Makefile"
        return
    command, arguments = command_of(words)
    assert command in SCRIPTS, f"{command} is not a console script of core/pyproject.toml"
    if command == "sweep":
        known = {option for action in sweep_parser()._actions for option in action.option_strings}
        flags = [word for word in arguments if word.startswith("--")]
        assert set(flags) <= known, f"sweep has no {set(flags) - known}"
        config = next((word for word in arguments if not word.startswith("-") and "=" not in word), None)
        if config and not placeholder(config):
            assert (CONFIG_DIR / "sweep" / f"{config}.yaml").is_file(), f"no configs/sweep/{config}.yaml"
        command = "fit"  # its overrides are fit's
        arguments = [word for word in arguments if "=" in word and not word.startswith("-")]
    else:
        assert command in HYDRA_COMMANDS, f"{command}: no configs/{command}.yaml"
        if "--cfg" in arguments:  # Hydra's own flag and its value (job, hydra, all)
            where = arguments.index("--cfg")
            assert arguments[where + 1] in ("job", "hydra", "all"), line
            arguments = arguments[:where] + arguments[where + 2 :]
    check_overrides(command, arguments)


def test_the_docs_show_every_command():
    """A negative control: the parser finds the command lines (each console script is documented)."""
    shown = {command_of(words_of(line))[0] for line in LINES}
    assert set(SCRIPTS) <= shown and len(LINES) > 40


def test_a_wrong_key_or_option_is_caught():
    """The check above can fail: a misspelt key, an unknown option, a flag sweep does not have."""
    with pytest.raises(AssertionError, match=r"data\.global_batch_sise is not a key of fit"):
        check_overrides("fit", ["data.global_batch_sise=3"])
    with pytest.raises(AssertionError, match=r"no experiment/nope\.yaml in the configs"):
        check_overrides("fit", ["experiment=nope"])
    with pytest.raises(AssertionError, match="split is not a key of fit"):
        check_overrides("fit", ["split=val"])
