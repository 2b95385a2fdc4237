"""Refuse answers that would bake a broken project, before anything is written."""

import json
import sys
from pathlib import Path

# cookiecutter renders this file: the answers arrive as JSON
ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")

sys.path.insert(0, str(Path(ANSWERS["__template_folder"]).resolve()))
from bake import Options  # noqa: E402  (found through the template folder, put on the path above)

try:
    Options.from_context(ANSWERS).check()
except ValueError as err:
    print(f"Error: {err}", file=sys.stderr)
    sys.exit(1)
