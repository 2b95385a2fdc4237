"""The user-facing settings' types and ranges, checked on the composed config before anything is built.

A wrong value should stop a run in its first second with one paragraph naming the
setting, not an hour later as a traceback from torch or Lightning. Three checks:

* the documented keys (:data:`RULES`) by type and range;
* any other value the command line overrides, by the type of its shipped default
  (``data.num_train=abc`` where the default is an integer);
* every instantiated node (``data``, ``model``, ``model.net``, ``model.optimizer``,
  callbacks, loggers) only holds arguments its ``_target_`` takes, so a ``+key`` that
  nothing reads is refused before a constructor sees it.
"""

from __future__ import annotations

import difflib
import inspect
import math
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.utils import get_object
from lightning.fabric.connector import _PRECISION_INPUT
from omegaconf import DictConfig, ListConfig, OmegaConf

from lightning_template_core._command_line.optional_packages import check_logger_packages
from lightning_template_core._errors import UserError
from lightning_template_core._training.declared_metrics import training_metrics, validation_metrics
from lightning_template_core._training.lr_scaling import CHOICES as LR_SCALING_CHOICES
from lightning_template_core._verification.causes import CAUSES


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """What a setting takes: ``accepts(value)`` and, for the message, ``expects`` and an ``example``."""

    accepts: Callable[[Any], bool]
    expects: str
    example: str


def integer(low: int | None = None, high: int | None = None, *, unset: bool = False, extra: Sequence = ()) -> Rule:
    """An integer in [low, high]; ``unset``: null allowed; ``extra``: other accepted values (``-1``, ``"auto"``)."""
    bounds = _bounds_text(low, high)
    also = "".join(f" or {value!r}" for value in extra) + (" or null" if unset else "")
    return Rule(
        lambda v: (
            (v is None and unset)
            or v in extra
            or (_is_int(v) and (low is None or v >= low) and (high is None or v <= high))
        ),
        f"an integer{bounds}{also}",
        str(low if low is not None else 1),
    )


def number(low: float | None = None, high: float | None = None, *, above: bool = False, unset: bool = False) -> Rule:
    """A finite number in [low, high] (``above``: strictly greater than ``low``); ``unset``: null allowed."""
    if above:
        bounds = f" greater than {low:g}" + (f" and at most {high:g}" if high is not None else "")
    else:
        bounds = _bounds_text(low, high)
    return Rule(
        lambda v: (
            (v is None and unset)
            or (_is_number(v) and (low is None or (v > low if above else v >= low)) and (high is None or v <= high))
        ),
        f"a number{bounds}" + (" or null" if unset else ""),
        "0.1" if above else str(low if low is not None else 0),
    )


def choice(*options: Any, unset: bool = False, example: str | None = None) -> Rule:
    """One of ``options`` (compared as text, so ``precision=32`` and ``precision="32"`` are one)."""
    names = {str(option) for option in options}
    return Rule(
        lambda v: (
            (v is None and unset)
            or (not isinstance(v, (bool, DictConfig, ListConfig)) and str(v) in names)
            or (isinstance(v, bool) and v in options)
        ),
        "one of " + ", ".join(str(option) for option in options) + (" or null" if unset else ""),
        example or str(options[0]),
    )


def text(*, unset: bool = False) -> Rule:
    return Rule(
        lambda v: (v is None and unset) or (isinstance(v, (str, int, float)) and not isinstance(v, bool)),
        "a text" + (" or null" if unset else ""),
        "<text>",
    )


def either(*rules: Rule) -> Rule:
    return Rule(
        lambda v: any(rule.accepts(v) for rule in rules), " or ".join(rule.expects for rule in rules), rules[0].example
    )


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    return f" of at most {high}" if high is not None else ""


def _device_list(value: Any) -> bool:
    if isinstance(value, ListConfig | list):
        return len(value) > 0 and all(_is_int(v) and v >= 0 for v in value)
    if isinstance(value, str):
        parts = [part for part in value.split(",") if part.strip()]
        return bool(parts) and all(part.strip().lstrip("-").isdigit() for part in parts)
    return False


BOOLEAN = choice(True, False)
# Lightning's precision names ("32-true", "bf16-mixed", ...; 32 and "32" are one)
PRECISIONS = tuple(
    sorted(
        {str(value) for name in typing.get_args(_PRECISION_INPUT) for value in typing.get_args(name)},
        key=lambda name: ("-" not in name, name),
    )
)
EVALUATED_SPLITS = ("val", "test")  # what evaluate's split= takes
EXPORT_FORMATS = ("pt2", "torchscript", "onnx")  # what export's format= takes
FRACTION_OR_COUNT = either(number(0.0, 1.0), integer(0), Rule(lambda v: v is None, "null", "null"))
RUN_LENGTH = integer(1, extra=(-1,))

# The documented keys (docs/configs.md, docs/fit.md, docs/tune.md), checked where the composed config has them.
RULES: dict[str, Rule] = {
    "seed": integer(0, 2**32 - 1),
    "ckpt_path": text(unset=True),
    "test_after_fit": BOOLEAN,
    "continue_on_other_data": BOOLEAN,
    "monitor": text(),
    "monitor_mode": choice("min", "max"),
    "lr_scaling": choice(*LR_SCALING_CHOICES, unset=True),
    "lr_reference_batch_size": integer(1, unset=True),
    "ddp_timeout_seconds": number(0.0, above=True, unset=True),
    "float32_matmul_precision": choice("highest", "high", "medium"),
    "data.global_batch_size": integer(1, unset=True),
    "data.micro_batch_size": integer(1, unset=True),
    "data.eval_batch_size": integer(1, unset=True),
    "data.num_workers": integer(0),
    "data.shuffle": BOOLEAN,
    "data.pin_memory": BOOLEAN,
    "data.on_device": choice(True, False, "auto"),
    "data.download": BOOLEAN,
    "data.root": text(),
    "model.optimizer.lr": number(0.0, above=True),
    "model.optimizer.weight_decay": number(0.0),
    "model.optimizer.momentum": number(0.0, 1.0),
    "model.net.dropout": number(0.0, 1.0),
    "model.label_smoothing": number(0.0, 1.0),
    "trainer.max_steps": RUN_LENGTH,
    "trainer.max_epochs": either(RUN_LENGTH, Rule(lambda v: v is None, "null", "null")),
    "trainer.min_steps": integer(0, unset=True),
    "trainer.min_epochs": integer(0, unset=True),
    "trainer.devices": either(integer(1, extra=(-1, "auto")), Rule(_device_list, "a list of device indices", "[0,1]")),
    "trainer.num_nodes": integer(1),
    "trainer.accelerator": text(),
    "trainer.strategy": text(),
    "trainer.precision": choice(*PRECISIONS, unset=True, example="32-true"),
    "trainer.val_check_interval": either(
        number(0.0, 1.0, above=True), integer(1), Rule(lambda v: v is None, "null", "")
    ),
    "trainer.check_val_every_n_epoch": integer(1, unset=True),
    "trainer.limit_train_batches": FRACTION_OR_COUNT,
    "trainer.limit_val_batches": FRACTION_OR_COUNT,
    "trainer.limit_test_batches": FRACTION_OR_COUNT,
    "trainer.limit_predict_batches": FRACTION_OR_COUNT,
    "trainer.overfit_batches": either(number(0.0, 1.0), integer(0)),
    "trainer.fast_dev_run": either(BOOLEAN, integer(0)),
    "trainer.gradient_clip_val": number(0.0, unset=True),
    "trainer.gradient_clip_algorithm": choice("norm", "value", unset=True),
    "trainer.accumulate_grad_batches": integer(1, unset=True),
    "trainer.deterministic": choice(True, False, "warn", unset=True),
    "trainer.benchmark": choice(True, False, unset=True),
    "trainer.log_every_n_steps": integer(1, unset=True),
    "trainer.num_sanity_val_steps": integer(-1, unset=True),
    "trainer.enable_progress_bar": BOOLEAN,
    "trainer.enable_model_summary": BOOLEAN,
    "trainer.enable_checkpointing": BOOLEAN,
    "trainer.sync_batchnorm": BOOLEAN,
    "trainer.use_distributed_sampler": BOOLEAN,
    # the shipped callbacks' settings (configs/callbacks/)
    "callbacks.model_checkpoint.save_top_k": integer(-1),
    "callbacks.model_checkpoint.every_n_train_steps": integer(0, unset=True),
    "callbacks.model_checkpoint.mode": choice("min", "max"),
    "callbacks.early_stopping.patience": integer(0),
    "callbacks.early_stopping.min_delta": number(0.0),
    "callbacks.early_stopping.mode": choice("min", "max"),
    "callbacks.early_stopping.check_finite": BOOLEAN,
    "callbacks.early_stopping.check_on_train_epoch_end": choice(True, False, unset=True),
    "callbacks.ema.decay": number(0.0, 1.0),
    "callbacks.ema.update_every_n_steps": integer(1),
    "callbacks.ema.update_starting_at_step": integer(0, unset=True),
    "callbacks.ema.use_buffers": BOOLEAN,
    # tune (configs/tune.yaml)
    "tune.fit_world_size": integer(1, unset=True),
    "tune.scale_batch_size": BOOLEAN,
    "tune.max_micro_batch_size": integer(1),
    "tune.steps_per_trial": integer(1),
    "tune.lr_find": BOOLEAN,
    "tune.lr_min": number(0.0, above=True),
    "tune.lr_max": number(0.0, above=True),
    "tune.lr_num_training": integer(2),
    "tune.lr_early_stop_threshold": number(0.0, above=True, unset=True),
    # verify (configs/verify.yaml)
    "verify.steps": integer(2),
    "verify.global_batch_size": Rule(
        lambda v: v is None or (_is_int(v) and v >= 4 and v % 4 == 0),
        "null or a multiple of 4 (verify splits it over 2 processes x 2 micro-batches)",
        "16",
    ),
    "verify.small_data": BOOLEAN,
    "verify.accept": Rule(
        lambda v: isinstance(v, (list, ListConfig)) and set(v) <= set(CAUSES),
        f"a list of causes out of {', '.join(CAUSES)}",
        "[batch_norm]",
    ),
    # the commands that use a trained model (configs/{evaluate,predict,generate,export}.yaml)
    "split": choice(*EVALUATED_SPLITS),
    "input": text(unset=True),
    "top_k": integer(1),
    "batch_size": integer(1),
    "prompt": text(unset=True),
    "words": integer(1),
    "temperature": number(0.0, above=True),
    "format": choice(*EXPORT_FORMATS),
    "output": text(),
    "output_dir": text(),
}

# What no run goes without (a ``~key`` on the command line can remove them)
REQUIRED = ("seed", "data", "model", "trainer", "monitor")

# The nodes a run instantiates; their keys must be arguments of their ``_target_``.
INSTANTIATED = ("data", "model", "model.net", "model.optimizer", "model.scheduler")
INSTANTIATED_GROUPS = ("callbacks", "logger")


def _shown(value: Any) -> str:
    """``value`` as it is written on the command line."""
    if isinstance(value, ListConfig):
        return "[" + ",".join(_shown(item) for item in value) + "]"
    if isinstance(value, DictConfig):
        return "{" + ",".join(f"{key}:{_shown(item)}" for key, item in value.items()) + "}"
    return "null" if value is None else str(value)


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    """Whether ``key`` is in ``cfg``, and its value (interpolations resolved)."""
    missing = object()
    value = OmegaConf.select(cfg, key, default=missing, throw_on_missing=False)
    return value is not missing, value


def check_rules(cfg: DictConfig, rules: dict[str, Rule] = RULES) -> None:
    """A UserError for the first documented setting whose value is of the wrong type or out of range."""
    for key, rule in rules.items():
        present, value = _select(cfg, key)
        if present and not rule.accepts(value):
            raise UserError(
                f"{key}={_shown(value)} is not a valid setting: {key} takes {rule.expects}. Fix the override"
                f" (e.g. {key}={rule.example}); docs/configs.md lists the settings."
            )
    for key in REQUIRED:
        if not _select(cfg, key)[0]:
            raise UserError(f"{key} is missing from the config (removed with ~{key}?): every run needs it; set it.")
    (has_min, lr_min), (has_max, lr_max) = _select(cfg, "tune.lr_min"), _select(cfg, "tune.lr_max")
    if has_min and has_max and lr_min >= lr_max:
        raise UserError(
            f"tune.lr_min={lr_min} is not below tune.lr_max={lr_max}: the range test sweeps the learning"
            " rate from lr_min up to lr_max. Give lr_min < lr_max (e.g. tune.lr_min=1e-6 tune.lr_max=10)."
        )
    if _select(cfg, "trainer.max_steps")[1] == -1 and _select(cfg, "trainer.max_epochs")[1] == -1:
        raise UserError(
            "trainer.max_steps=-1 and trainer.max_epochs=-1 give the run no end (and the learning-rate schedule"
            " no length): set one of them, e.g. trainer.max_epochs=3."
        )


# The plain types of a setting (its default's, or the one its target declares), and what each accepts
_PLAIN_TYPES = {
    "int": ("an integer", _is_int),
    "float": ("a number", _is_number),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a text", lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool)),
}

_EXAMPLES = {"an integer": "1", "a number": "0.1", "true or false": "true", "a text": "<text>"}


def _kind_of(default: Any) -> tuple[str, Callable[[Any], bool]] | None:
    """What a value must be to replace ``default``, or None where any value goes (a null default)."""
    if isinstance(default, bool):
        return _PLAIN_TYPES["bool"]
    if _is_int(default):
        return _PLAIN_TYPES["int"]
    if isinstance(default, float):
        return _PLAIN_TYPES["float"]
    if isinstance(default, str):
        return _PLAIN_TYPES["str"]
    if isinstance(default, ListConfig):
        items = {_kind_of(item)[0] for item in default if _kind_of(item) is not None}
        if len(items) == 1:
            name, accepts = _kind_of(default[0])
            return (
                f"a list of {name.removeprefix('an ').removeprefix('a ')}s",
                lambda v: isinstance(v, ListConfig) and all(accepts(item) for item in v),
            )
        return "a list", lambda v: isinstance(v, ListConfig)
    if isinstance(default, DictConfig):  # null removes it (model.scheduler=null: no schedule)
        return "a mapping or null", lambda v: v is None or isinstance(v, DictConfig)
    return None


def check_override_types(cfg: DictConfig, shipped: DictConfig, overridden: Iterable[str]) -> None:
    """A UserError for an overridden value whose type differs from what its key takes (keys not in :data:`RULES`).

    What a key takes is its shipped default's type; where the default is null, the type
    its ``_target_`` declares for it (an argument ``count: int | None = None`` takes integers).
    """
    for key in overridden:
        if key in RULES or key.startswith("hydra.") or key == "hydra":
            continue
        has_default, default = _select(shipped, key)
        present, value = _select(cfg, key)
        if not (has_default and present):
            continue
        parameters = _parameters_named(cfg, key)
        kind = _kind_of(default) if default is not None else _declared_kind(parameters)
        takes_null = any(p.default is None or "None" in str(p.annotation) for p in parameters)
        if kind is not None and not kind[1](value) and not (value is None and takes_null):
            example = _shown(default) if default is not None else _EXAMPLES.get(kind[0], "null")
            raise UserError(
                f"{key}={_shown(value)} has the wrong type: {key} takes {kind[0]} (its default here is"
                f" {_shown(default)}). Fix the override, e.g. {key}={example}."
            )


def _declared_kind(parameters: list[inspect.Parameter]) -> tuple[str, Callable[[Any], bool]] | None:
    """What a parameter declared as one plain type (or that type or None) takes; None if it declares more."""
    for parameter in parameters:
        declared = parameter.annotation
        text = declared.__name__ if isinstance(declared, type) else str(declared)  # a string under PEP 563
        names = {part.strip() for part in text.replace("Optional[", "").strip("]").split("|")}
        names.discard("None")
        if len(names) == 1 and (name := names.pop()) in _PLAIN_TYPES:
            return _PLAIN_TYPES[name]
    return None


def _initialisers(obj: Any) -> list[Callable]:
    """What builds ``obj``: a function itself, or each ``__init__`` of a class's bases, nearest first."""
    if not isinstance(obj, type):
        return [obj]
    return [klass.__init__ for klass in inspect.getmro(obj) if "__init__" in vars(klass)]


def _parameters_named(cfg: DictConfig, key: str) -> list[inspect.Parameter]:
    """The parameters ``key`` is of its node's ``_target_`` (one per ``__init__`` that names it), nearest first."""
    parent, _, name = key.rpartition(".")
    present, node = _select(cfg, parent) if parent else (False, None)
    if not present or not isinstance(node, DictConfig) or "_target_" not in node:
        return []
    try:
        functions = _initialisers(get_object(str(node._target_)))
        found = [inspect.signature(function).parameters.get(name) for function in functions]
    except Exception:  # an unimportable target is reported by instantiate, naming it
        return []
    return [parameter for parameter in found if parameter is not None]


def _parameters(key: str, target: str) -> tuple[set[str], bool] | None:
    """The keyword arguments ``target`` takes, and whether it takes any at all; None if unknown.

    A class of the core or of the target's own package whose ``__init__`` passes ``**kwargs``
    on takes its bases' arguments too; elsewhere ``**kwargs`` may go anywhere (WandbLogger's go to wandb), so
    any key is taken.
    """
    try:
        obj = get_object(target)
    except Exception as error:  # Hydra's message wraps the cause (a moved module names its new place)
        cause = error.__cause__ or error
        raise UserError(
            f"{key}._target_={target} cannot be imported ({type(cause).__name__}: {cause}). Fix the name, or"
            " install the package it comes from."
        ) from None
    names: set[str] = set()
    ours = {__name__.split(".")[0], target.split(".")[0]}  # the core's classes and the target's own package's
    for function in _initialisers(obj):
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature
            return None
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names - {"self"}, False
        if getattr(function, "__module__", "").split(".")[0] not in ours:
            break
    return names - {"self"}, True


def check_arguments(cfg: DictConfig) -> None:
    """A UserError for a key of an instantiated node that its ``_target_`` does not take."""
    nodes = [key for key in INSTANTIATED]
    for group in INSTANTIATED_GROUPS:
        node = cfg.get(group)
        if isinstance(node, DictConfig):
            nodes += [f"{group}.{name}" for name, entry in node.items() if isinstance(entry, DictConfig)]
    for key in nodes:
        present, node = _select(cfg, key)
        if not present or not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        taken = _parameters(key, str(node._target_))
        if taken is None or taken[1]:
            continue
        for name in node:
            if str(name).startswith("_") or name in taken[0]:
                continue
            near = difflib.get_close_matches(str(name), sorted(taken[0]), n=1)
            hint = f"did you mean {key}.{near[0]}? " if near else ""
            raise UserError(
                f"{key}.{name} is not a setting of {node._target_} ({key}): {hint}It takes "
                f"{', '.join(sorted(taken[0]))}. Remove the key (~{key}.{name}) or fix its name."
            )


def check_monitor(cfg: DictConfig) -> None:
    """A UserError if ``monitor``, or a callback's own ``monitor`` (early stopping, the checkpoints), names a metric
    the model does not log (known where it declares them)."""
    validated, trained = validation_metrics(cfg), training_metrics(cfg)
    if validated is None or trained is None:
        return
    callbacks = cfg.get("callbacks") or {}
    monitors = [("monitor", cfg.get("monitor"), "no checkpoint could be ranked")]
    for name in callbacks if isinstance(callbacks, DictConfig) else ():
        entry = callbacks.get(name)
        if isinstance(entry, DictConfig) and entry.get("monitor") is not None:
            monitors.append((f"callbacks.{name}.monitor", entry.get("monitor"), f"callbacks.{name} would fail"))
    for key, monitor, consequence in monitors:
        if str(monitor) in (*validated, *trained):
            continue
        raise UserError(
            f"{key}={monitor} is not a metric this model logs: {cfg.model._target_} logs {', '.join(validated)} at"
            f" each validation (and {', '.join(trained)} while it trains), so {consequence} at the first"
            f" validation. Set {key} to a validation metric (mode max for accuracies, min for losses and"
            " perplexities)."
        )


def check_settings(cfg: DictConfig, shipped: DictConfig | None = None, overridden: Iterable[str] = ()) -> None:
    """Every check before anything is built: types and ranges, arguments, the monitored metric, the loggers'
    packages."""
    check_rules(cfg)
    if shipped is not None:
        check_override_types(cfg, shipped, overridden)
    check_arguments(cfg)
    check_monitor(cfg)
    check_logger_packages(cfg)
