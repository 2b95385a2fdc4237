"""What identifies the files a run reads: each one's path under the data's root and size, and for a few large
files (a corpus, a binary data set) a sample of their bytes.

Cheap enough for every start: a folder of a million images costs a million stats, no read;
up to ``SAMPLED_FILES`` files also have their first and last ``SAMPLE_BYTES`` hashed, so a
corpus rewritten with the same size is told apart. Not a full content hash: a change in the
middle of a file of the same size goes unseen (the caches see it: ``array_cache``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

SAMPLED_FILES = 1000
SAMPLE_BYTES = 64 * 1024


def source_identity(root: Path, files: Iterable[Path]) -> dict[str, str]:
    """``{relative path: "<size>" or "<size>:<sample digest>"}`` of ``files`` (all under ``root``)."""
    files = sorted(Path(f) for f in files)
    sample = len(files) <= SAMPLED_FILES
    identity = {}
    for path in files:
        size = path.stat().st_size
        relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        identity[relative] = f"{size}:{_sample_digest(path, size)}" if sample else str(size)
    return identity


def _sample_digest(path: Path, size: int) -> str:
    digest = hashlib.blake2b(digest_size=12)
    with path.open("rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        if size > 2 * SAMPLE_BYTES:
            handle.seek(size - SAMPLE_BYTES)
            digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()
