"""Hydra's search path for lightning-template's commands: after the project's configs, the core's shared ones.

Hydra discovers this plugin in the ``hydra_plugins`` namespace. It acts only where the
folder Hydra was given is a registered project's (or the core's own), so no other Hydra
application in the environment sees these configs.
"""

import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from lightning_template_core._command_line.config_dirs import CORE_CONFIGS, OVERRIDE, registered_projects


class CoreConfigsSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        ours = {str(folder) for folder in [*registered_projects().values(), CORE_CONFIGS]}
        if os.environ.get(OVERRIDE):
            ours.add(str(Path(os.environ[OVERRIDE]).resolve()))
        given = {element.path.removeprefix("file://") for element in search_path.get_path()}
        if not ours & given:
            return
        if str(CORE_CONFIGS) not in given:
            search_path.append(provider="lightning-template-core", path=f"file://{CORE_CONFIGS}")
