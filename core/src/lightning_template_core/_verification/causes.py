"""What can make a split of the global batch train another model, found by looking at the run's parts.

Each suspect names the modules or code at fault, the config switch that turns it off (where
the config has one, so that ``verify`` can confirm it by re-running without it) and what to
change. Randomness or statistics in code verify cannot see (a DataModule's own transforms,
a custom collective) shows only as an unexplained difference.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import lightning.pytorch as L
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lightning_template_core._training.module import GlobalBatchModule

CAUSES = ("batch_norm", "dropout", "loss")  # what verify.accept names


@dataclass(frozen=True)
class Suspect:
    cause: str  # one of CAUSES
    found: str  # what was seen, in words
    switch: str | None  # the override that turns it off, where the config has one
    advice: str


def _named(modules: list[tuple[str, nn.Module]], detail=lambda m: "") -> str:
    shown = [f"{name} ({type(module).__name__}{detail(module)})" for name, module in modules[:6]]
    more = f" and {len(modules) - 6} more" if len(modules) > 6 else ""
    return ", ".join(shown) + more


def _net_setting(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, f"model.net.{key}", default=None)


def batch_norm(model: nn.Module, cfg: DictConfig) -> Suspect | None:
    """BatchNorm and its kin normalise each sample by statistics of the whole micro-batch."""
    mixing = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not mixing:
        return None
    switch = "model.net.norm=group" if _net_setting(cfg, "norm") == "batch" else None
    return Suspect(
        "batch_norm",
        f"modules that mix the samples of a micro-batch: {_named(mixing)}",
        switch,
        "use a norm that sees one sample at a time (GroupNorm, LayerNorm"
        + (": model.net.norm=group" if switch else "")
        + "); SyncBatchNorm (trainer.sync_batchnorm=true) makes DDP ranks agree but not accumulation",
    )


def _dropout_rate(module: nn.Module) -> float:
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p
    if isinstance(module, nn.RNNBase) and module.num_layers > 1:
        return module.dropout
    if isinstance(module, nn.MultiheadAttention):
        return module.dropout
    return 0.0


def dropout(model: nn.Module, cfg: DictConfig) -> Suspect | None:
    """Dropout draws its masks from each process's random stream, in the order micro-batches come."""
    active = [(name, m) for name, m in model.named_modules() if _dropout_rate(m) > 0]
    if not active:
        return None
    setting = _net_setting(cfg, "dropout")
    switch = "model.net.dropout=0" if isinstance(setting, (int, float)) and setting > 0 else None
    return Suspect(
        "dropout",
        f"randomness active in training: {_named(active, lambda m: f', p={_dropout_rate(m):g}')}",
        switch,
        "accept it (the runs are alike in distribution, not equal)"
        + (" or train without it: model.net.dropout=0" if switch else " or set its rate to 0"),
    )


def _returns_global_mean(module: L.LightningModule) -> bool | None:
    """Whether ``training_step`` goes through ``global_mean`` (None where its source cannot be read)."""
    try:
        source = inspect.getsource(type(module).training_step)
    except (OSError, TypeError):
        return None
    return "global_mean" in source


def loss(model: L.LightningModule, cfg: DictConfig) -> Suspect | None:
    """A per-micro-batch mean weighs the items of small micro-batches more: not the global batch's mean."""
    if isinstance(model, GlobalBatchModule) and _returns_global_mean(model) is not False:
        return None
    return Suspect(
        "loss",
        f"{type(model).__name__}.training_step does not return self.global_mean(<summed loss>, <items in the"
        " global batch>)",
        None,
        "sum the loss over the micro-batch's items and return self.global_mean(loss_sum, batch.global_items)"
        " (training/module.py): a mean per micro-batch weighs items by the size of their micro-batch",
    )


def suspects(model: L.LightningModule, cfg: DictConfig) -> list[Suspect]:
    found = (check(model, cfg) for check in (batch_norm, dropout, loss))
    return [suspect for suspect in found if suspect is not None]


# What verify cannot look into, said beside a difference that no suspect accounts for.
UNSEEN = (
    "randomness drawn from a process-wide generator (torch.rand, random.random, a transform of your own) in the"
    " network, the loss or the data: draw it per sample with batching/randomness.py's per_sample_uniforms",
    "statistics or collectives over the micro-batch or the ranks in your own code (a mean, a max, an all_reduce)",
)
