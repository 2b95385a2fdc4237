"""The metrics of a checkpoint on one split, as ``fit`` reports them after training and ``evaluate`` on demand.

One function for both, so ``evaluate`` gives exactly the numbers ``fit`` wrote in its
summary: the same loaders (sharded across ranks without padding), the same metrics,
and on the test split the same reference predictors beside the model's.
"""

from __future__ import annotations

from typing import Any

import torch

from lightning_template_core._runs.assembly import Run


def scalar(value: Any) -> float | None:
    return None if value is None else float(value.item() if isinstance(value, torch.Tensor) else value)


def split_metrics(run: Run, ckpt_path: str | None, split: str = "test") -> dict[str, float]:
    """The metrics of ``ckpt_path`` (None: the model as it is) on ``split``, and the data's references on test.

    The checkpoint is read with ``weights_only=True``: tensors and plain data, no code.
    """
    trainer = run.trainer
    evaluate = trainer.test if split == "test" else trainer.validate
    results = evaluate(run.model, datamodule=run.datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=True)
    metrics = {key: scalar(value) for key, value in (results[0] if results else {}).items()}
    references = {  # a reference <metric>_<predictor> stands beside the model's own <metric>, if it logs one
        f"test/{name}": value
        for name, value in run.datamodule.test_references().items()
        if f"test/{name.split('_')[0]}" in metrics
    }
    if split != "test" or not references:
        return metrics
    for logger in trainer.loggers:
        logger.log_metrics(references, step=trainer.global_step)
        logger.save()
    return {**metrics, **references}
