"""A sweep config: W&B's sweep format, read the same way by the Optuna and the W&B backend.

A trial is the ``fit`` command with one ``name=value`` override per parameter, as W&B's
``${args_no_hyphens}`` passes them. So parameter names are flat dotted config keys
(``model.optimizer.lr``, not a nested ``model: parameters: ...`` block, which W&B
would pass as ``model={'optimizer': ...}``), and a value is written into the override
with ``str()`` (so a null must be the text ``null``: W&B sends None as ``None``).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lightning_template_core._command_line.hydra_command import CONFIG_DIR
from lightning_template_core._errors import UserError

METHODS = ("grid", "random", "bayes")
GOALS = ("maximize", "minimize")
# The distributions the Optuna backend can sample (W&B's names); W&B has a few more.
DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "log_uniform_values", "q_uniform")
# What W&B's agent substitutes in `command` (wandb/wandb_agent.py and sweeps' create_sweep_command_args).
AGENT_MACROS = (
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_no_equals",
    "args_json",
    "args_json_file",
    "args_append_hydra",
    "args_override_hydra",
)
MACRO = re.compile(r"\$\{([^}]*)\}")
ENV_MACRO = re.compile(r"envvar:[A-Z0-9_]*")


def override_key(text: str) -> str:
    """The config key of a Hydra override (``+a.b=1`` and ``~a.b`` -> ``a.b``)."""
    return text.split("=", 1)[0].lstrip("+~")


def fit_command_line(overrides: Sequence[str]) -> str:
    """The ``fit`` command a user can paste to run these overrides."""
    return "fit " + " ".join(shlex.quote(text) for text in overrides)


def override(name: str, value: Any) -> str:
    """``name=value`` exactly as W&B's agent writes it for ``${args_no_hyphens}``."""
    return f"{name}={value}"


@dataclass(frozen=True)
class Parameter:
    """One swept setting: a constant, a list of choices, or a range (``log`` for log-uniform)."""

    name: str
    distribution: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None

    @property
    def constant(self) -> bool:
        return self.distribution == "constant"

    @property
    def log(self) -> bool:
        return self.distribution == "log_uniform_values"

    @property
    def numeric(self) -> bool:
        return self.low is not None or all(_is_number(c) for c in self.choices)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep file."""

    path: Path
    name: str
    method: str
    metric: str
    goal: str
    parameters: tuple[Parameter, ...]
    early_terminate: Mapping[str, Any] | None
    raw: Mapping[str, Any]

    @property
    def fixed(self) -> dict[str, Any]:
        return {p.name: p.choices[0] for p in self.parameters if p.constant}

    @property
    def searched(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if not p.constant)

    @property
    def experiment(self) -> str | None:
        return self.fixed.get("experiment")

    def overrides(self, values: Mapping[str, Any], extra: Sequence[str] = ()) -> list[str]:
        """A trial's ``fit`` overrides: the constants, ``values`` of the searched parameters, then ``extra``.

        An ``extra`` override replaces the constant of the same key (a shorter budget for
        a test, another trainer preset).
        """
        replaced = {override_key(text) for text in extra}
        constants = {name: value for name, value in self.fixed.items() if name not in replaced}
        return [*(override(name, value) for name, value in {**constants, **values}.items()), *extra]


def find_sweep_file(name_or_path: str) -> Path:
    """``configs/sweep/<name>.yaml``, or a path to a sweep file."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = CONFIG_DIR / "sweep" / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in (CONFIG_DIR / "sweep").glob("*.yaml"))) or "none"
    raise UserError(
        f"No sweep config {name_or_path!r}: give the name of a file in {CONFIG_DIR / 'sweep'} (known: {known})"
        " or the path of a sweep YAML file."
    )


def load_spec(name_or_path: str) -> SweepSpec:
    path = find_sweep_file(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"The sweep config {path} is not valid YAML: {err}") from err
    return parse_spec(raw, path)


def parse_spec(raw: Any, path: Path) -> SweepSpec:
    """Check ``raw`` (a W&B sweep config) and read it; every mistake names the key and the fix."""
    where = f"The sweep config {path}"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping with method, metric and parameters (W&B's sweep format).")
    method = raw.get("method")
    if method not in METHODS:
        raise UserError(f"{where}: method={method!r} must be one of {', '.join(METHODS)}.")
    metric = raw.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or metric.get("goal") not in GOALS:
        raise UserError(
            f"{where}: metric must name the logged metric to optimize and its goal, e.g."
            " metric: {name: val/acc, goal: maximize} (goal: maximize or minimize)."
        )
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise UserError(f"{where}: parameters must map flat dotted config keys to W&B parameter specs.")
    parsed = tuple(_parameter(name, spec, where) for name, spec in parameters.items())
    if not any(not p.constant for p in parsed):
        raise UserError(f"{where}: every parameter is a constant (value:); give at least one values: or min/max.")
    if method == "grid":
        ranged = [p.name for p in parsed if p.low is not None]
        if ranged:
            raise UserError(f"{where}: method=grid needs values: lists, but {', '.join(ranged)} give a range.")
    _check_command(raw.get("command"), where)
    early = raw.get("early_terminate")
    if early is not None and (not isinstance(early, dict) or early.get("type") != "hyperband"):
        raise UserError(f"{where}: early_terminate must be absent or a mapping: type: hyperband, min_iter: N, eta: M.")
    return SweepSpec(
        path=path,
        name=str(raw.get("name") or path.stem),
        method=method,
        metric=metric["name"],
        goal=metric["goal"],
        parameters=parsed,
        early_terminate=early,
        raw=raw,
    )


def _parameter(name: Any, spec: Any, where: str) -> Parameter:
    """One entry of ``parameters:``: a constant (``value:``), choices (``values:``) or a ``min``/``max`` range."""
    _check_flat_entry(name, spec, where)
    about = f"{where}: parameter {name!r}"
    values = _listed_values(spec, about)
    distribution = _distribution(spec, values, about)
    if distribution not in ("constant", "categorical"):
        return _range_parameter(name, distribution, spec, about)
    if values is None:
        raise UserError(f"{about} ({distribution}) needs value: or values:.")
    return Parameter(name, distribution, choices=tuple(values))


def _check_flat_entry(name: Any, spec: Any, where: str) -> None:
    """A parameter is a flat dotted key with a mapping of W&B settings: W&B's agent cannot pass nested blocks."""
    if not isinstance(name, str) or not isinstance(spec, dict):
        raise UserError(f"{where}: parameter {name!r} must be a mapping with value:, values: or min: and max:.")
    if "parameters" in spec:
        raise UserError(
            f"{where}: parameter {name!r} nests parameters. Use flat dotted names (e.g. model.optimizer.lr):"
            f" W&B passes a nested block as {name}=" + "{...}, which Hydra rejects."
        )


def _listed_values(spec: dict, about: str) -> list | None:
    """``value:`` as a list of one, or ``values:``; None for a range. A null is refused: W&B would send 'None'."""
    if "value" in spec:
        values = [spec["value"]]
    elif "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise UserError(f"{about}: values must be a non-empty list.")
    else:
        return None
    if any(v is None for v in values):
        raise UserError(
            f"{about} has a null value. W&B passes None as the text 'None', which Hydra"
            " reads as a string: write the text null instead (value: 'null')."
        )
    return values


def _distribution(spec: dict, values: list | None, about: str) -> str:
    """The parameter's ``distribution:``, or W&B's default for its keys; only those the Optuna backend samples."""
    distribution = spec.get("distribution") or _inferred_distribution(spec, values)
    if distribution not in DISTRIBUTIONS:
        raise UserError(
            f"{about} uses distribution {distribution!r}; the sweeps here support {', '.join(DISTRIBUTIONS)}."
        )
    return distribution


def _range_parameter(name: str, distribution: str, spec: dict, about: str) -> Parameter:
    """A ``min``/``max`` range, checked as its distribution needs (positive for log, integers for int)."""
    low, high = spec.get("min"), spec.get("max")
    if not (_is_number(low) and _is_number(high) and low < high):
        raise UserError(f"{about} ({distribution}) needs numbers min < max (got {low}, {high}).")
    if distribution == "log_uniform_values" and low <= 0:
        raise UserError(f"{about} is log-uniform: min must be positive (got {low}).")
    if distribution == "int_uniform" and not (isinstance(low, int) and isinstance(high, int)):
        raise UserError(f"{about} is int_uniform: min and max must be integers.")
    return Parameter(name, distribution, low=low, high=high, step=_quantum(distribution, spec, about))


def _quantum(distribution: str, spec: dict, about: str) -> float | None:
    """q_uniform's step ``q``; the other ranges have none."""
    if distribution != "q_uniform":
        return None
    step = spec.get("q")
    if not (_is_number(step) and step > 0 and math.isfinite(step)):
        raise UserError(f"{about} is q_uniform: q must be a positive number.")
    return step


def _inferred_distribution(spec: dict, values: list | None) -> str:
    """W&B's defaults: a single value is a constant, a list categorical, an int range int_uniform."""
    if values is not None:
        return "constant" if "value" in spec else "categorical"
    if isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
        return "int_uniform"
    return "uniform"


def _check_command(command: Any, where: str) -> None:
    """The W&B agent's command must pass Hydra overrides, and every macro in it must be one it expands.

    The agent replaces a list element that is exactly ``${macro}``; an unknown one is
    replaced by nothing, silently dropping what was meant (every parameter, for a
    misspelled ``${args_no_hyphens}``). Inside a longer element, ``${...}`` is passed on
    as text (``${envvar:NAME}`` aside), so Hydra interpolations such as ``${oc.env:X}`` work.
    """
    if command is None:
        return
    if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
        raise UserError(f"{where}: command must be a list of strings.")
    for part in command:
        whole = MACRO.fullmatch(part)
        if whole and whole.group(1) not in AGENT_MACROS and not ENV_MACRO.fullmatch(whole.group(1)):
            raise UserError(
                f"{where}: command element {part!r} is not a macro W&B's agent expands; it would silently be"
                f" dropped. Known macros: {', '.join(AGENT_MACROS)}."
            )
    if "${args_no_hyphens}" not in command:
        raise UserError(
            f"{where}: command must pass the parameters as " + "${args_no_hyphens} (key=value, the overrides Hydra"
            " accepts), e.g. command: [${env}, ${interpreter}, -m, <package>.fit, ${args_no_hyphens}]."
        )
