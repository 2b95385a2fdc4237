"""Text data files read as strict UTF-8, refusing what no text corpus holds.

A byte that is not UTF-8 or a control character (Unicode category Cc: NUL and the other
C0 characters but tab, DEL, C1) is an error naming the file, the line and the column
(1-based, in characters), so a damaged or mis-encoded file is never read half-right:
``errors="replace"`` would train on U+FFFD, and a NUL would become a word. A ``\\r``
before a line break (Windows line ends) is dropped; anywhere else it is a control
character.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lightning_template_core._errors import UserError

# category Cc but the tab and the line break (a \r that ends a line is removed before the search)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def read_text_lines(path: Path, kind: str, layout: str) -> list[str]:
    """The lines of ``path`` (line ``n`` at index ``n - 1``) without their line breaks.

    ``kind`` names the file in the messages (``"sentence file"``) and ``layout`` says
    what it holds (``"words separated by spaces"``). As when iterating over an open
    file, a final line break ends the last line instead of starting an empty one.
    """
    return list(iter_text_lines(path, kind, layout))


def iter_text_lines(path: Path, kind: str, layout: str) -> Iterator[str]:
    """:func:`read_text_lines` one line at a time: memory does not grow with the file."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.removesuffix(b"\n")
            line = line.removesuffix(b"\r")  # a Windows line end, or a \r that ends the file
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as err:
                column = len(line[: err.start].decode("utf-8", errors="replace")) + 1
                raise UserError(
                    f"{path}:{number}: byte {line[err.start]:#04x} at column {column} is not UTF-8."
                    f" {kind.capitalize()}s are read as UTF-8: convert the file (e.g. iconv -f latin1 -t utf-8) or"
                    " remove the byte."
                ) from None
            if bad := _CONTROL.search(text):
                raise UserError(
                    f"{path}:{number}: control character {bad.group()!r} at column {bad.start() + 1}. A {kind} holds"
                    f" {layout}: remove the character or clean the file."
                )
            yield text
