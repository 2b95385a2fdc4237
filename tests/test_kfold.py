"""k-fold cross-validation: folds that partition the pool, stratified class folders, and a report by setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from lightning_template_core._batching.validation_folds import Folds
from lightning_template_core._errors import UserError
from lightning_template_core._files.class_folders import ClassFolders
from lightning_template_core.sweep.kfold import check_kfold
from lightning_template_core.sweep.report import write_report
from lightning_template_core.sweep.spec import parse_spec


@pytest.mark.parametrize(
    ("folds", "fold", "message"),
    [
        (1, 0, "data.folds=1 must be an integer of at least 2"),
        (5, 5, "data.fold=5 must be an integer from 0 to 4"),
        (None, 2, "data.fold=2 needs data.folds"),
        ("5", 0, "data.folds='5'"),
    ],
)
def test_fold_settings_out_of_range_are_refused_naming_them(folds, fold, message):
    with pytest.raises(UserError, match=message):
        Folds.from_settings(folds, fold)


def test_the_folds_of_one_permutation_partition_it_and_train_on_the_rest():
    order = np.random.default_rng(0).permutation(103)
    vals = []
    for index in range(5):
        train, val = Folds(5, index).split_rows(order)
        assert sorted([*train, *val]) == list(range(103)) and not set(train) & set(val)
        assert len(val) in (20, 21)
        vals += val.tolist()
    assert sorted(vals) == list(range(103))  # each item validated on exactly once


def test_class_folders_are_cut_per_class_and_keep_their_test_split(tmp_path):
    for name, count in (("a", 12), ("b", 7)):
        (tmp_path / name).mkdir()
        for i in range(count):
            (tmp_path / name / f"{i}.x").write_bytes(b"")
    folders = ClassFolders("file", (".x",))
    _, files = folders.find(tmp_path)
    held_out = folders.split(tmp_path, files, seed=3, val_fraction=0.2, test_fraction=0.2)
    validated = []
    for index in range(3):
        splits = folders.split(tmp_path, files, 3, 0.2, 0.2, folds=Folds(3, index))
        assert splits["test"] == held_out["test"]
        assert sorted(splits["train"] + splits["val"]) == sorted(held_out["train"] + held_out["val"])
        for label, pool in ((0, 10), (1, 6)):  # each class cut into thirds of what is not test
            assert sum(item[1] == label for item in splits["val"]) in (pool // 3, pool // 3 + 1)
        validated += splits["val"]
    assert sorted(validated) == sorted(held_out["train"] + held_out["val"])


def test_a_split_file_that_lists_validation_files_is_refused_with_folds(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(4):
        (tmp_path / "a" / f"{i}.x").write_bytes(b"")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("a/0.x\na/1.x\na/2.x\n")
    (tmp_path / "splits" / "val.txt").write_text("a/3.x\n")
    folders = ClassFolders("file", (".x",))
    _, files = folders.find(tmp_path)
    with pytest.raises(UserError, match=r"data.folds=2 draws the validation files from the training list.*val.txt"):
        folders.split(tmp_path, files, 0, 0.1, 0.0, folds=Folds(2, 0))


def spec(fold_values: list, folds: int | None = 3):
    parameters = {"model.optimizer.lr": {"values": [0.1, 0.2]}, "data.fold": {"values": fold_values}}
    if folds is not None:
        parameters["data.folds"] = {"value": folds}
    raw = {"method": "grid", "metric": {"name": "val/acc", "goal": "maximize"}, "parameters": parameters}
    return parse_spec(raw, Path("kfold.yaml"))


def test_a_kfold_sweep_must_fix_the_folds_and_search_each_fold_once():
    check_kfold(spec([0, 1, 2]))
    with pytest.raises(UserError, match=r"fixes no data.folds"):
        check_kfold(spec([0, 1, 2], folds=None))
    with pytest.raises(UserError, match=r"data.fold must take the values 0 to 2"):
        check_kfold(spec([0, 1]))


def test_the_report_ranks_settings_by_their_mean_over_the_folds_not_by_one_fold(tmp_path):
    kfold = spec([0, 1, 2])
    study = optuna.create_study(direction="maximize")
    distributions = {
        "model.optimizer.lr": optuna.distributions.CategoricalDistribution([0.1, 0.2]),
        "data.fold": optuna.distributions.CategoricalDistribution([0, 1, 2]),
    }
    results = {0.1: [0.95, 0.5, 0.5], 0.2: [0.7, 0.7, 0.7]}  # 0.1 has the best trial, 0.2 the best mean
    for lr, values in results.items():
        for fold, value in enumerate(values):
            overrides = ["experiment=x", f"model.optimizer.lr={lr}", f"data.fold={fold}", "data.folds=3"]
            params = {"model.optimizer.lr": lr, "data.fold": fold}
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=distributions, value=value, user_attrs={"overrides": overrides}
                )
            )
    best = write_report(study, kfold, tmp_path)
    assert best["params"] == {"model.optimizer.lr": 0.2} and best["val/acc"] == pytest.approx(0.7)
    assert best["spread"] == pytest.approx(0.0) and best["by_fold"] == {"0": 0.7, "1": 0.7, "2": 0.7}
    assert "data.fold" not in best["command"] and "model.optimizer.lr=0.2" in best["command"]
    assert json.loads((tmp_path / "best.json").read_text()) == best
    rows = (tmp_path / "folds.csv").read_text().splitlines()
    assert rows[0].startswith("model.optimizer.lr,folds done,mean val/acc,spread,fold 0") and len(rows) == 3
