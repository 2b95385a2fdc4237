"""Credentials in the URLs a command is given are never shown or recorded: masked in every stream and file.

A tracker URI or a sweep's storage URL may carry a password (``http://user:pw@host``).
Whatever prints it (a message of ours, an exception of MLflow's, Hydra's "Error executing
job with overrides" line) goes through this process's stdout and stderr, which a command
wraps (:func:`mask_output`); the files a run writes of its config and command are masked
with :func:`mask`. Give credentials through the environment instead (``MLFLOW_TRACKING_PASSWORD``,
``WANDB_API_KEY``, a PGPASSFILE): a masked URL in a run's files cannot log in again.
Standard library only.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
from collections.abc import Iterable
from typing import TextIO

MASK = "***"
# scheme://user:password@ (the password up to the @ that ends the credentials)
URL_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*://[^\s:/@'\"]*:)(?P<password>[^\s@/'\"]+)@")


def mask(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return URL_CREDENTIALS.sub(lambda match: f"{match['head']}{MASK}@", text)


def secrets_in(arguments: Iterable[str]) -> set[str]:
    """The passwords of the URLs in ``arguments``, as given and as their percent-decoded text."""
    found = set()
    for argument in arguments:
        for match in URL_CREDENTIALS.finditer(argument):
            found |= {match["password"], urllib.parse.unquote(match["password"])}
    return {secret for secret in found if secret and secret != MASK}


class MaskingStream:
    """A text stream that writes what it is given with ``secrets`` (and any URL's password) masked."""

    def __init__(self, stream: TextIO, secrets: set[str]) -> None:
        self.stream, self.secrets = stream, sorted(secrets, key=len, reverse=True)

    def write(self, text: str) -> int:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return self.stream.write(mask(text))

    def __getattr__(self, name: str):  # flush, fileno, isatty, encoding, ...
        return getattr(self.stream, name)


def mask_output(arguments: Iterable[str]) -> None:
    """From now on, this process's stdout and stderr mask the passwords found in ``arguments`` (once)."""
    secrets = secrets_in(arguments)
    if secrets and not isinstance(sys.stderr, MaskingStream):
        sys.stdout = MaskingStream(sys.stdout, secrets)
        sys.stderr = MaskingStream(sys.stderr, secrets)
