"""Refuse answers that would bake a broken project, before anything is written."""

import json
import sys
from pathlib import Path

# cookiecutter renders this file: the answers arrive as JSON
ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")

# <repository>/template: cookiecutter's _repo_dir where absolute (cruft's clone of the commit it bakes), else the
# folder the template's extension named (a relative _repo_dir is relative to where cookiecutter started)
REPO_DIR = Path(ANSWERS.get("_repo_dir", ""))
TEMPLATE_DIR = REPO_DIR if REPO_DIR.is_absolute() else Path(ANSWERS["__template_folder"]).resolve()
sys.path.insert(0, str(TEMPLATE_DIR))
from bake import Options  # noqa: E402  (found through the template folder, put on the path above)

try:
    Options.from_context(ANSWERS).check()
except ValueError as err:
    print(f"Error: {err}", file=sys.stderr)
    sys.exit(1)
