"""Helpers for fetching data sets: checksums of downloaded files."""

from __future__ import annotations

import hashlib
from pathlib import Path


def md5_of(path: Path) -> str:
    """MD5 hex digest of a file, read in 1 MiB chunks (archives are hundreds of MB)."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
