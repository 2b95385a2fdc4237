"""Check a sweep against the ``fit`` config before any trial starts: its overrides, and that fit logs its metric."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._errors import UserError
from lightning_template_core._training.declared_metrics import validation_metrics
from lightning_template_core.sweep.spec import SweepSpec, override, override_key


def sample_points(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """One point per choice of each categorical parameter (others at their first choice or ``min``)."""
    first = {p.name: p.choices[0] if p.choices else p.low for p in spec.searched}
    yield first
    for parameter in spec.searched:
        for choice in parameter.choices[1:]:
            yield {**first, parameter.name: choice}
        if parameter.high is not None:
            yield {**first, parameter.name: parameter.high}


def check_against_fit(spec: SweepSpec, extra: list[str]) -> None:
    """Every parameter is a key (or config group) of the composed ``fit`` config, and lands as given;
    the model of every trial logs the sweep's metric at validation.

    ``extra`` are overrides for every trial; they may replace a constant, not a searched parameter.
    """
    swept = {p.name for p in spec.searched}
    clashing = sorted(swept & {override_key(o) for o in extra})
    if clashing:
        raise UserError(
            f"The overrides set {', '.join(clashing)}, which the sweep config {spec.path} searches: drop them"
            " from the command line, or fix them in the sweep config with value:."
        )
    for point in sample_points(spec):
        overrides = spec.overrides(point, extra)
        try:
            cfg = compose_fit(overrides)
        except (HydraException, OmegaConfBaseException) as err:
            raise UserError(
                f"A trial of the sweep config {spec.path} cannot run: fit {' '.join(overrides)} fails with"
                f' "{str(err).strip()}". Parameter names (in the file and on the command line) must be keys of'
                " fit's config (fit --cfg job shows them) or config groups such as experiment."
            ) from err
        replaced = {override_key(text) for text in extra}
        for name, value in {**spec.fixed, **point}.items():
            if name not in replaced:
                _check_landed(cfg, name, value, spec)
        _check_metric_logged(cfg, spec)


def _check_landed(cfg: DictConfig, name: str, value: Any, spec: SweepSpec) -> None:
    if name in cfg.hydra.runtime.choices:
        landed, expected = cfg.hydra.runtime.choices[name], str(value)
    else:
        try:
            node = OmegaConf.select(cfg, name, throw_on_missing=False)
        except OmegaConfBaseException:  # an interpolation only a running app resolves
            return
        is_container = isinstance(node, DictConfig) or OmegaConf.is_list(node)
        landed, expected = (OmegaConf.to_container(node) if is_container else node), value
    if landed != expected:
        raise UserError(
            f"The sweep config {spec.path}: {override(name, value)} gives {name}={landed!r} in fit's config, not"
            f" {expected!r}. Write the value as Hydra reads it on the command line."
        )


def _check_metric_logged(cfg: DictConfig, spec: SweepSpec) -> None:
    """Refuse a metric the trial's model never logs: each trial would train to its end, then fail."""
    logged = validation_metrics(cfg)
    if logged is None or spec.metric in logged:
        return  # None: a model that does not declare its metrics (a user's own), not refused
    experiment = cfg.hydra.runtime.choices.get("experiment")
    raise UserError(
        f"The sweep config {spec.path} optimizes metric.name={spec.metric}, which fit never logs with"
        f" experiment={experiment}: its model ({cfg.model._target_}) logs {', '.join(logged)} at each validation."
        " Set metric.name in the sweep config to one of them."
    )
