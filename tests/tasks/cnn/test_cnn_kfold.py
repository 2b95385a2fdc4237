"""k-fold on the image data: the folds partition the training images, and a k-fold sweep reports by setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from lightning_template.tasks.cnn.data import SyntheticImageDataModule
from lightning_template_core.testing import run_module
from lightning_template_core.testing.runs import sweep_storage_url as default_url
from lightning_template_core.testing.runs import tiny_overrides

TINY = tiny_overrides(__file__)
ROOT = Path(__file__).resolve().parents[3]  # the project's root


def splits(**settings) -> dict[str, np.ndarray]:
    data = SyntheticImageDataModule(num_train=200, num_test=40, global_batch_size=16, seed=1, **settings)
    data.setup()
    return {split: dataset.rows for split, dataset in data.datasets.items()}


def test_the_folds_validate_on_each_training_image_once_and_keep_the_test_set():
    held_out = splits()
    folds = [splits(folds=4, fold=index) for index in range(4)]
    assert sorted(np.concatenate([f["val"] for f in folds]).tolist()) == list(range(200))
    for fold in folds:
        assert len(fold["val"]) == 50 and sorted([*fold["train"], *fold["val"]]) == list(range(200))
        assert np.array_equal(fold["test"], held_out["test"])


@pytest.mark.slow
def test_a_kfold_sweep_trains_each_fold_and_reports_the_mean(tmp_path):
    """A sweep file in the shape of configs/sweep/cnn_kfold.yaml, two folds of the tiny experiment."""
    shipped = yaml.safe_load((ROOT / "configs" / "sweep" / "cnn_kfold.yaml").read_text())
    parameters = {**shipped["parameters"], "data.fold": {"values": [0, 1]}, "data.folds": {"value": 2}}
    parameters["model.optimizer.lr"] = {"values": [0.1]}
    config = tmp_path / "kfold.yaml"
    config.write_text(yaml.safe_dump({**shipped, "name": "kfold", "parameters": parameters}))
    tiny = [o for o in TINY if not o.startswith("experiment=")]
    run = run_module("sweep", str(config), "--dir", str(tmp_path), *tiny, "trainer.max_epochs=1", run_dir=tmp_path)
    study = optuna.load_study(study_name="kfold", storage=default_url(tmp_path))
    values = {t.params["data.fold"]: t.value for t in study.trials}
    assert sorted(values) == [0, 1] and values[0] != values[1]  # validated on different images
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["val/acc"] == pytest.approx((values[0] + values[1]) / 2) and best["folds"] == 2
    assert "data.fold" not in best["command"] and "Best over 2 folds" in run.stdout
