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
from pathlib import Path

from lightning_template.errors import UserError

# category Cc but the tab and the line break; \r only where it does not end a line
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n|\Z)")


def read_text_lines(path: Path, kind: str, layout: str) -> list[str]:
    """The lines of ``path`` (line ``n`` at index ``n - 1``) without their line breaks.

    ``kind`` names the file in the messages (``"sentence file"``) and ``layout`` says
    what it holds (``"words separated by spaces"``). As when iterating over an open
    file, a final line break ends the last line instead of starting an empty one.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        start = data.rfind(b"\n", 0, err.start) + 1
        number = data.count(b"\n", 0, err.start) + 1
        column = len(data[start : err.start].decode("utf-8")) + 1
        raise UserError(
            f"{path}:{number}: byte {data[err.start]:#04x} at column {column} is not UTF-8. {kind.capitalize()}s are"
            " read as UTF-8: convert the file (e.g. iconv -f latin1 -t utf-8) or remove the byte."
        ) from None
    if bad := _CONTROL.search(text):
        at = bad.start()
        number = text.count("\n", 0, at) + 1
        column = at - text.rfind("\n", 0, at)
        raise UserError(
            f"{path}:{number}: control character {bad.group()!r} at column {column}. A {kind} holds {layout}:"
            " remove the character or clean the file."
        )
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
