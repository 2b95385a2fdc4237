"""Every experiment, preset and documented override composes, and builds what it names."""

from __future__ import annotations

import functools
import inspect

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from lightning_template_core._batching.data_description import DataDescription
from lightning_template_core._command_line.config_dirs import group_options
from lightning_template_core._command_line.hydra_command import compose_fit
from lightning_template_core._errors import UserError

from conftest import DEFAULT_TASK, ROOT, TASK

EXPERIMENTS = group_options("experiment")
TRAINERS = group_options("trainer")
DEBUGS = group_options("debug")
LOGGERS = group_options("logger")

# The overrides the README promises work without a `+`, with any experiment and preset.
USER_OVERRIDES = [
    "trainer.max_steps=7",
    "trainer.max_epochs=2",
    "trainer.devices=1",
    "trainer.accelerator=cpu",
    "trainer.strategy=auto",
    "trainer.num_nodes=1",
    "trainer.precision=bf16-mixed",
    "trainer.val_check_interval=0.5",
    "trainer.deterministic=true",
    "trainer.fast_dev_run=true",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.limit_predict_batches=2",
    "trainer.gradient_clip_val=1.0",
    "seed=3",
    "ckpt_path=/tmp/x.ckpt",
    "data.global_batch_size=64",
    "data.micro_batch_size=16",
    "model.net.norm=group",
    "model.optimizer.lr=0.05",
]


def resolved(cfg) -> dict:
    """The config with Hydra's runtime values filled in as a run would have them."""
    cfg.hydra.runtime.output_dir = "/tmp/run"
    HydraConfig.instance().set_config(cfg)
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    return OmegaConf.to_container(job, resolve=True)


# ... and, for data read from files (a data config with a root), these too.
FILE_OVERRIDES = ["data.root=/tmp/data", "data.download=true"]


def other_norm(experiment: str) -> str:
    """A norm the experiment's network takes besides its own: group for convolutions, layer where it has none."""
    return "layer" if compose_fit([f"experiment={experiment}"]).model.net.norm == "none" else "group"


def test_the_experiment_list_is_what_the_readme_documents():
    readme = (ROOT / "README.md").read_text()
    assert TASK in EXPERIMENTS
    assert all(f"experiment={name}" in readme for name in EXPERIMENTS)
    assert set(TRAINERS) >= {"default", "cpu", "gpu", "ddp", "ddp_cpu"}
    assert set(DEBUGS) >= {"fast_dev_run", "overfit", "profiler", "limit"}
    assert set(LOGGERS) >= {"csv", "tensorboard", "wandb"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("trainer", TRAINERS)
def test_user_overrides_apply_without_plus(experiment, trainer):
    norm = other_norm(experiment)
    overrides = [o.replace("model.net.norm=group", f"model.net.norm={norm}") for o in USER_OVERRIDES]
    reads_files = "root" in compose_fit([f"experiment={experiment}"]).data
    overrides += FILE_OVERRIDES if reads_files else []
    cfg = resolved(compose_fit([f"experiment={experiment}", f"trainer={trainer}", *overrides]))
    assert cfg["trainer"]["max_steps"] == 7 and cfg["trainer"]["precision"] == "bf16-mixed"
    assert cfg["trainer"]["use_distributed_sampler"] is False
    assert cfg["data"]["micro_batch_size"] == 16 and cfg["data"].get("root", "/tmp/data") == "/tmp/data"
    assert cfg["model"]["optimizer"]["lr"] == 0.05 and cfg["model"]["net"]["norm"] == norm
    assert cfg["ckpt_path"] == "/tmp/x.ckpt" and cfg["data"]["seed"] == 3


@pytest.mark.parametrize("debug", DEBUGS)
@pytest.mark.parametrize("logger", LOGGERS)
def test_debug_and_logger_presets_compose(debug, logger):
    cfg = resolved(compose_fit([f"debug={debug}", f"logger={logger}"]))
    assert cfg["trainer"]["_target_"] == "lightning.pytorch.Trainer"
    (entry,) = cfg["logger"].values()
    # each writes into the run directory (MLflow: its SQLite store)
    assert entry.get("save_dir", "/tmp/run") == "/tmp/run"
    assert entry.get("tracking_uri", "sqlite:////tmp/run/mlflow.db") == "sqlite:////tmp/run/mlflow.db"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("debug", [None, *DEBUGS])
def test_each_experiment_builds_its_datamodule_and_model(experiment, debug):
    cfg = compose_fit([f"experiment={experiment}", *([f"debug={debug}"] if debug else [])])
    resolved(cfg)  # sets the Hydra runtime values the config refers to
    datamodule = instantiate(cfg.data, _convert_="all")
    assert datamodule.global_batch_size == cfg.data.global_batch_size
    model = instantiate(cfg.model, data=description_for(experiment).as_dict(), _convert_="all")
    assert sum(p.numel() for p in model.parameters()) > 10_000


@functools.cache  # one per experiment: each debug preset's case reads the same (embedded data is generated)
def description_for(experiment: str) -> DataDescription:
    """The experiment's data description; for data read from files (not here), that of the embedded data of
    an experiment with the same model."""
    cfg = compose_fit([f"experiment={experiment}"])
    if "root" in cfg.data:
        model = cfg.hydra.runtime.choices.model
        experiment = next(
            e
            for e in EXPERIMENTS
            if "root" not in (other := compose_fit([f"experiment={e}"])).data
            and other.hydra.runtime.choices.model == model
        )
        cfg = compose_fit([f"experiment={experiment}"])
    resolved(cfg)
    return instantiate(cfg.data, _convert_="all").describe()


def test_run_directory_defaults_to_runs_experiment_date():
    cfg = compose_fit()  # the default experiment: the project's first task
    job = resolved(cfg)
    assert cfg.hydra.run.dir.startswith(f"runs/{DEFAULT_TASK}/20")
    assert job["experiment_name"] == DEFAULT_TASK and job["paths"]["data_dir"].startswith("data")


def _net_size_cases() -> list[tuple[str, str, object]]:
    """Every size, list of sizes and dropout of every experiment's network, with a value it cannot take."""
    cases = []
    for experiment in EXPERIMENTS:
        net = compose_fit([f"experiment={experiment}"]).model.net
        for key, value in net.items():
            if key == "dropout":
                cases.append((experiment, key, 1.0))
            elif isinstance(value, int) and not isinstance(value, bool):
                cases.append((experiment, key, 0))
            elif OmegaConf.is_list(value) and all(isinstance(v, int) for v in value):
                cases.append((experiment, key, []))
    return cases


@pytest.mark.parametrize(("experiment", "key", "bad"), _net_size_cases())
def test_a_network_size_it_cannot_be_built_from_is_a_user_error_naming_it(experiment, key, bad):
    """Checked where the network is built (the command then prints one paragraph and exits 2)."""
    factory = instantiate(compose_fit([f"experiment={experiment}"]).model.net, **{key: bad})
    first = next(iter(inspect.signature(factory.func).parameters))  # num_classes or vocab_size: from the data
    with pytest.raises(UserError, match=rf"model\.net\.{key}="):
        factory(**{first: 4})
