"""Data sizes small enough for quick runs of an experiment: verify's runs and the benchmarks' smoke runs.

``configs/small_data/<data config>.yaml`` gives an embedded data set a few hundred samples
(drawn in a fraction of a second); data read from files has no such file (its size is the files').
"""

from __future__ import annotations

from typing import Any

import yaml

from lightning_template.command_line.hydra_command import CONFIG_DIR

SMALL_DATA_DIR = CONFIG_DIR / "small_data"


def small_data(data_config: str | None) -> dict[str, Any]:
    """``{"data.<key>": value}`` for ``data=<data_config>``; empty where it has no small sizes."""
    sizes = SMALL_DATA_DIR / f"{data_config}.yaml"
    if data_config is None or not sizes.is_file():
        return {}
    return {f"data.{key}": value for key, value in yaml.safe_load(sizes.read_text())["data"].items()}
