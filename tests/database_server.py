"""A real PostgreSQL server for the tests: started in a temporary folder on a free local port, stopped after.

The server's programs come from Debian's ``postgresql`` package (``.ci/run`` installs it);
the tests that need one are skipped, saying why, only where it is missing and
``LIGHTNING_TEMPLATE_REQUIRE_POSTGRES`` is unset (CI sets it, so CI never skips them).
PostgreSQL refuses to run as root: as root (CI's container), the server runs as the
package's ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REQUIRED = "LIGHTNING_TEMPLATE_REQUIRE_POSTGRES"
USER = "sweeps"


def server_programs() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on the PATH, else Debian's versioned folder."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def missing_reason() -> str | None:
    if server_programs() is None:
        return "no PostgreSQL server programs (initdb, pg_ctl): install Debian's postgresql package"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and PostgreSQL refuses to run as root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server in a new temporary folder; yield its URL (user ``sweeps``, trusted, database ``postgres``).

    The folder is made directly in the system's temporary folder: pytest's are private to
    their owner, and the server may run as another user.
    """
    programs = server_programs()
    folder = Path(tempfile.mkdtemp(prefix="lightning-template-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    run = {"check": True, "capture_output": True, "text": True}
    subprocess.run(
        _as_server_user([str(programs / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8"]), **run
    )
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    pg_ctl = [str(programs / "pg_ctl"), "-D", str(data)]
    subprocess.run(_as_server_user([*pg_ctl, "-o", options, "-l", str(folder / "log"), "-w", "start"]), **run)
    try:
        deadline = time.monotonic() + 30
        while True:  # pg_ctl -w waits for the socket; the TCP port follows at once, but check
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql://{USER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([*pg_ctl, "-m", "immediate", "stop"]), **run)
        shutil.rmtree(folder, ignore_errors=True)
