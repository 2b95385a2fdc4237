"""Values read from a command line before Hydra composes it, parsed with Hydra's own override grammar.

A path with a space must be quoted (``'ckpt_path="/runs/my run/last.ckpt"'``); read as raw
text, its quotes stayed part of the value. Here an override means what Hydra will make of it:
quotes and escapes removed, ``+``/``~`` prefixes on the key, lists and other values as given.
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException


def parse(argument: str) -> Override | None:
    """``argument`` as Hydra reads it, or None where it is a flag or not valid Hydra (Hydra's check reports it)."""
    if argument.startswith("-") or "=" not in argument:
        return None
    try:
        (override,) = OverridesParser.create().parse_overrides(overrides=[argument])
    except OverrideParseException:
        return None
    return override


def key_of(argument: str) -> str:
    """The key (or group) ``argument`` sets, without its prefix (``+a.b=1`` sets ``a.b``)."""
    override = parse(argument)
    return override.key_or_group if override is not None else argument.lstrip("+~").split("=", 1)[0]


def value_of(arguments: list[str], key: str) -> str | None:
    """The text the last override of ``key`` in ``arguments`` gives it (a string value unquoted), or None."""
    found = None
    for argument in arguments:
        override = parse(argument)
        if override is not None and override.key_or_group == key and not override.is_delete():
            value = override.value()
            found = value if isinstance(value, str) else override.get_value_element_as_str()
    return found
