"""Runs in the new project's folder: copy the live project from the template's repository and bake it."""

import json
import sys
from pathlib import Path

answers_file = Path(".bake-answers.json")
ANSWERS = json.loads(answers_file.read_text())
answers_file.unlink()

# <repository>/template: cookiecutter's _repo_dir where absolute (cruft's clone of the commit it bakes), else the
# folder the template's extension named (a relative _repo_dir is relative to where cookiecutter started)
REPO_DIR = Path(ANSWERS.get("_repo_dir", ""))
TEMPLATE_DIR = REPO_DIR if REPO_DIR.is_absolute() else Path(ANSWERS["__template_folder"]).resolve()
sys.path.insert(0, str(TEMPLATE_DIR))
from bake import Options, bake  # noqa: E402  (found through the template folder, put on the path above)

try:
    bake(TEMPLATE_DIR.parent, Path.cwd(), Options.from_context(ANSWERS))
except ValueError as err:
    print(f"Error: {err}", file=sys.stderr)
    sys.exit(1)
