"""A Jinja extension for this template: where the template folder is, for the hooks.

Cookiecutter gives hooks ``_repo_dir`` as typed on its command line (often relative,
while hooks run in the new project's folder). This module is imported from the template
folder, so its own path names it, resolved while the working directory is still the one
cookiecutter was started in.
"""

from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE_FOLDER = str(Path(__file__).resolve().parent)


class TemplateFolder(Extension):
    """``{{ template_folder }}``: the absolute path of this template folder."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["template_folder"] = TEMPLATE_FOLDER
