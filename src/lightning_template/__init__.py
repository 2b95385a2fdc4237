"""The project's tasks, one package each in ``tasks/<task>/``, and where its configs are.

The configs (experiments, data, models, sweeps) are in ``configs/`` at the project's root.
lightning-template-core owns the commands and the guarantees; it finds the configs through
this project's entry point (``pyproject.toml``) and the tasks through the configs' ``_target_``s.
"""

from pathlib import Path

# The project's Hydra configs (configs/ in the checkout, installed in editable mode): the core's commands find
# them through this project's entry point, before their own shared configs.
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# >>> template
# This repository's package held the core before lightning-template-core: its old module names fail naming their new
# place (a finder consulted only after the normal ones found nothing).
from lightning_template_core._moved import install as _name_the_moved_modules  # noqa: E402

_name_the_moved_modules(__name__)
# <<< template
