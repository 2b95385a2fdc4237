"""The ``verify`` command: does this experiment train the same model under any split of its global batch,
and does a stopped run resume exactly? If not, why?

verify                                           # the default experiment, as configured
verify model.net.norm=group                      # a network with a norm switch, without BatchNorm
verify model.net._target_=my_package.nets.MyNet  # your own network
verify verify.accept=[batch_norm]                # exit 0 where BatchNorm alone accounts for the differences
verify verify.steps=10 verify.small_data=false   # longer runs, the experiment's own data sizes

Each layout (verification/layouts.py) is a real ``fit`` run of a few optimizer steps in float64
on the CPU, in the run directory; their weights are compared with the single-process run.
Where a layout differs, the model is looked into (verification/causes.py) and the runs are
repeated with each suspect switched off where the config can, to show which one accounts for
the difference. Exit status 0: everything checked is exact (or differs only through causes
given in verify.accept, confirmed so); 1: something is not (the report says what); 2: a mistake
in the command line or the config.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from lightning_template_core._command_line.hydra_command import hydra_command
from lightning_template_core._errors import UserError
from lightning_template_core._runs.assembly import build_run
from lightning_template_core._runs.small_data import small_data
from lightning_template_core._verification.causes import UNSEEN, Suspect, suspects
from lightning_template_core._verification.layouts import (
    LAYOUTS,
    REFERENCE,
    SPLITS,
    Layout,
    RunFailed,
    is_exact,
    keep_every,
    max_difference,
    run_fit,
    step_checkpoint,
)
from lightning_template_core._verification.report import Ablation, Outcome, print_report

EXIT_NOT_EXACT = 1


def _user_overrides() -> list[str]:
    """The command line's overrides for ``fit``: verify's own settings and the logger choice left out."""
    given = HydraConfig.get().overrides.task
    return [o for o in given if not o.lstrip("~+").startswith(("verify.", "verify=", "logger"))]


def _global_batch_size(cfg: DictConfig) -> int:
    size = cfg.verify.global_batch_size or cfg.data.get("global_batch_size")
    if not isinstance(size, int) or size % SPLITS:
        raise UserError(
            f"verify.global_batch_size={size}: verify splits the global batch {SPLITS} ways (2 processes x"
            f" 2 micro-batches), so it needs a multiple of {SPLITS}, e.g. verify.global_batch_size=16."
        )
    return size


def _small_data(cfg: DictConfig, user: list[str]) -> dict[str, Any]:
    """The data config's small sizes (runs/small_data.py), less what the command line sets."""
    if not cfg.verify.small_data:
        return {}
    set_by_user = {o.lstrip("+").partition("=")[0] for o in user}
    sizes = small_data(HydraConfig.get().runtime.choices.get("data"))
    return {key: value for key, value in sizes.items() if key not in set_by_user}


def _forced(cfg: DictConfig, global_batch_size: int) -> dict[str, Any]:
    """What verify sets on every run: float64 on the CPU, its length and global batch, nothing else to do."""
    forced = {
        "trainer.precision": "64-true",
        "trainer.accelerator": "cpu",
        "trainer.num_nodes": 1,
        "trainer.max_steps": cfg.verify.steps,
        "trainer.max_epochs": -1,
        "trainer.num_sanity_val_steps": 0,
        "trainer.accumulate_grad_batches": None,
        "trainer.enable_progress_bar": False,
        "trainer.enable_model_summary": False,
        "data.global_batch_size": global_batch_size,
        "test_after_fit": False,
        "ckpt_path": None,
    }
    # >>> sentences
    if cfg.data.get("global_batch_tokens") is not None:
        forced["data.global_batch_tokens"] = None  # sized in items, so that every layout splits it evenly
    # <<< sentences
    return forced


def _as_overrides(values: dict[str, Any]) -> list[str]:
    return [
        f"{key}={'null' if value is None else json.dumps(value) if isinstance(value, str) else value}"
        for key, value in values.items()
    ]


def _inspected(cfg: DictConfig, values: dict[str, Any]) -> list[Suspect]:
    """The suspects in the run's model, built here as the reference run builds it."""
    job = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(job):
        for key, value in {**values, "trainer.devices": 1, "trainer.strategy": "auto"}.items():
            OmegaConf.update(job, key, value, force_add=True)
        job.logger = None
        job.callbacks = None
        del job["verify"]
    with _quiet("lightning", "lightning_template"):
        run = build_run(job)
    return suspects(run.model, job)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """What building a run says (devices, batch layout) was said by the reference run already."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class Verification:
    """The runs of one ``verify``: layouts, resume, ablations; each a ``fit`` process in ``output_dir``."""

    def __init__(self, cfg: DictConfig, output_dir: Path) -> None:
        self.output_dir = output_dir
        user = _user_overrides()
        self.global_batch_size = _global_batch_size(cfg)
        small, forced = _small_data(cfg, user), _forced(cfg, self.global_batch_size)
        self.values = {**small, **forced}  # what the runs change in the config (the inspected model gets it too)
        # a CSV log in each run's directory, whatever logger the project defaults to (no W&B or MLflow runs)
        self.base = [*_as_overrides(small), *user, "logger=csv", *_as_overrides(forced)]
        self.half = cfg.verify.steps // 2
        self.resumable = OmegaConf.select(cfg, "callbacks.model_checkpoint") is not None

    def _run(self, name: str, layout: Layout, extra: list[str] = ()) -> dict[str, Tensor] | None:
        print(f"verify: {name} ...", file=sys.stderr, flush=True)
        try:
            return run_fit([*self.base, *layout.overrides(self.global_batch_size), *extra], self.output_dir / name)
        except RunFailed as failed:
            print(f"verify: the {name} run failed: {failed}", file=sys.stderr)
            return None

    def _compared(self, reference: dict[str, Tensor] | None, weights: dict[str, Tensor] | None) -> float:
        return float("nan") if weights is None or reference is None else max_difference(reference, weights)

    def layouts(self, prefix: str = "", switches: Sequence[str] = (), only: Sequence[Layout] = LAYOUTS):
        """The reference run's weights, and each other layout's max |dW| against them (``switches`` added)."""
        keep = keep_every(self.half) if self.resumable and not switches else []
        reference = self._run(f"{prefix}reference", REFERENCE, [*switches, *keep])
        differences = {
            layout.name: self._compared(
                reference, self._run(prefix + layout.name.replace(" ", "-"), layout, list(switches))
            )
            for layout in only
            if layout is not REFERENCE
        }
        return reference, differences

    def resume(self, reference: dict[str, Tensor] | None) -> float | None:
        """Max |dW| of the run stopped at step ``steps // 2`` and resumed, against the straight one."""
        if not self.resumable:
            return None
        checkpoint = step_checkpoint(self.output_dir / "reference", self.half)
        resumed = self._run("resumed", REFERENCE, [*keep_every(self.half), f"ckpt_path={checkpoint}"])
        return self._compared(reference, resumed)

    def ablations(self, found: list[Suspect], inexact: list[Layout]) -> list[Ablation]:
        """The differing layouts again with each switchable suspect off, then with all of them off."""
        switchable = [s for s in found if s.switch]
        sets = [[s] for s in switchable] + ([switchable] if len(switchable) > 1 else [])
        done = []
        for chosen in sets:
            causes, switches = tuple(s.cause for s in chosen), tuple(s.switch for s in chosen)
            _, differences = self.layouts("without-" + "-".join(causes) + "-", switches, [REFERENCE, *inexact])
            done.append(Ablation(causes, switches, differences))
        return done


def run_verify(cfg: DictConfig) -> None:
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    verification = Verification(cfg, output_dir)
    reference, differences = verification.layouts()
    resumed = verification.resume(reference)
    inexact = [layout for layout in LAYOUTS if layout.name in differences and not is_exact(differences[layout.name])]
    found, ablations = [], []
    if inexact:
        found = _inspected(cfg, verification.values)
        ablations = verification.ablations(found, inexact)
    outcome = Outcome(
        experiment=cfg.get("experiment_name"),
        steps=cfg.verify.steps,
        global_batch_size=verification.global_batch_size,
        differences=differences,
        resumed=resumed,
        resumed_from=verification.half,
        suspects=found,
        ablations=ablations,
        accepted=tuple(cfg.verify.accept or ()),
        unseen=UNSEEN,
        output_dir=str(output_dir),
    )
    (output_dir / "verify.json").write_text(json.dumps(outcome.as_dict(), indent=2) + "\n")
    print_report(outcome)
    if not outcome.passes():
        sys.exit(EXIT_NOT_EXACT)


main = hydra_command("verify")(run_verify)

if __name__ == "__main__":
    main()
