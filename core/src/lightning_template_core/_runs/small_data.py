"""Data sizes small enough for quick runs of an experiment: verify's runs and the benchmarks' smoke runs.

``configs/small_data/<data config>.yaml`` gives an embedded data set a few hundred samples
(drawn in a fraction of a second); data read from files has no such file (its size is the files').
"""

from __future__ import annotations

from typing import Any

import yaml

from lightning_template_core._command_line.config_dirs import find_config


def small_data(data_config: str | None) -> dict[str, Any]:
    """``{"data.<key>": value}`` for ``data=<data_config>``; empty where it has no small sizes."""
    sizes = find_config(f"small_data/{data_config}.yaml") if data_config is not None else None
    if sizes is None:
        return {}
    return {f"data.{key}": value for key, value in yaml.safe_load(sizes.read_text())["data"].items()}
