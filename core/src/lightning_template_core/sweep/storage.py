"""Where a local sweep's study lives: a SQLite file (one machine), a database server, or a journal file.

``--storage`` takes ``sqlite:///path``, ``postgresql://...``, ``mysql://...`` (SQLAlchemy
URLs) or ``journal:<path>`` (Optuna's journal on a shared file system, for clusters
without a database server); the default is ``study.db`` in the sweep directory. SQLite
is for one machine: Optuna advises against it for distributed studies (its locking, and
not on NFS). Every kind also gives a lock that all processes of the study share, so
"count the trials, then start one" cannot be raced (see ``StudyLock``).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

from lightning_template_core._errors import UserError
from lightning_template_core._files.file_lock import held_exclusively

DB_NAME = "study.db"
JOURNAL_PREFIX = "journal:"
KINDS = ("sqlite:///<path>", "postgresql://user:password@host:port/database", "mysql://...", "journal:<path>")
# The driver each server's URL gets when it names none: the ones the project's extras install
# (pure-Python or binary wheels; SQLAlchemy's own defaults, psycopg2 and mysqlclient, need a compiler).
DEFAULT_DRIVERS = {"postgresql": ("psycopg", "postgres"), "mysql": ("pymysql", "mysql")}
ENGINE_OPTIONS = {
    # SQLite: wait for another writer instead of failing at once ("database is locked")
    "sqlite": {"connect_args": {"timeout": 60}},
    # servers: a connection the server or a firewall dropped between trials is replaced, not used
    "postgresql": {"pool_pre_ping": True},
    "mysql": {"pool_pre_ping": True, "pool_recycle": 3600},  # MySQL closes idle connections after wait_timeout
}


@dataclass(frozen=True)
class StudyStorage:
    storage: BaseStorage
    shown: str  # the location as said to the user: the URL without its password
    lock: StudyLock


def default_url(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / DB_NAME).resolve()}"


def open_storage(url: str | None, sweep_dir: Path) -> StudyStorage:
    """The study's storage for ``--storage url`` (None: SQLite in ``sweep_dir``), refusing what cannot work."""
    url = url or default_url(sweep_dir)
    if url.startswith(JOURNAL_PREFIX):
        return _journal(Path(url[len(JOURNAL_PREFIX) :]))
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        parsed = None
    dialect = parsed.get_backend_name() if parsed else None
    if dialect not in ENGINE_OPTIONS:
        raise UserError(f"--storage {url!r} is not a study storage this sweep knows: give one of {', '.join(KINDS)}.")
    if dialect in DEFAULT_DRIVERS and "+" not in parsed.drivername:
        parsed = parsed.set(drivername=f"{dialect}+{DEFAULT_DRIVERS[dialect][0]}")
    shown = parsed.render_as_string(hide_password=True)
    secret = parsed.render_as_string(hide_password=False)
    if dialect == "sqlite":
        database = Path(parsed.database or "")
        lock: StudyLock = FileLock(database.with_name(database.name + ".sweep-lock"))
    try:
        if dialect != "sqlite":
            lock = ServerLock(sqlalchemy.create_engine(secret, **ENGINE_OPTIONS[dialect]), dialect)
        # processes opening a new database at once would each create Optuna's tables (a duplicate-key error)
        with lock.held("schema"), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(secret, engine_kwargs=ENGINE_OPTIONS[dialect])
    except ModuleNotFoundError as err:
        driver, extra = DEFAULT_DRIVERS.get(dialect, (err.name, None))
        how = f"pip install '.[{extra}]' in the project" if extra else f"install {err.name}"
        raise UserError(f"--storage {shown} needs the database driver {err.name} ({driver}): {how}.") from err
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = " ".join(str(getattr(err, "orig", None) or err).split())[:400].rstrip(".")
        raise UserError(
            f"Cannot open the study database {shown}: {reason}. Check that the server runs and accepts connections"
            " from this machine, and the host, port, database name, user and password in --storage."
        ) from err
    return StudyStorage(storage, shown, lock)


def _journal(path: Path) -> StudyStorage:
    if not path.name:
        raise UserError("--storage journal: needs a file path after the colon, e.g. journal:/shared/sweeps/lr.log.")
    budget = path.with_name(path.name + ".budget")  # the target of the budget lock's link (it must exist)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        budget.touch()
        # the symlink lock works on every NFS version (open-with-O_EXCL needs NFSv3)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileSymlinkLock(str(path)))
    except OSError as err:
        raise UserError(f"Cannot open the study journal {path}: {err.strerror}. Give a writable path.") from err
    return StudyStorage(JournalStorage(backend), f"{JOURNAL_PREFIX}{path}", JournalLock(budget))


class StudyLock(abc.ABC):
    """Held while a process counts the study's trials and starts the next: the budget and grid stay exact."""

    @abc.abstractmethod
    def held(self, study_name: str) -> contextlib.AbstractContextManager[None]:
        """A context in which no other process of the study holds the lock."""


class FileLock(StudyLock):
    """An flock on a file beside the SQLite database (one machine, as SQLite itself)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def held(self, study_name: str) -> Iterator[None]:
        with held_exclusively(self.path):
            yield


class JournalLock(StudyLock):
    """Optuna's symlink lock, which works on NFS; a holder killed with it is broken after 30 s."""

    def __init__(self, target: Path) -> None:
        self.lock = JournalFileSymlinkLock(str(target))

    @contextlib.contextmanager
    def held(self, study_name: str) -> Iterator[None]:
        self.lock.acquire()  # blocks until it holds the lock
        try:
            yield
        finally:
            self.lock.release()


class ServerLock(StudyLock):
    """The database server's own named lock (PostgreSQL advisory lock, MySQL GET_LOCK), held on one connection."""

    def __init__(self, engine: sqlalchemy.engine.Engine, dialect: str) -> None:
        self.engine, self.dialect = engine, dialect

    @contextlib.contextmanager
    def held(self, study_name: str) -> Iterator[None]:
        name = f"lightning-template sweep {study_name}"[:64]  # MySQL's limit on a lock's name
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        if self.dialect == "postgresql":
            take, release = "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
        else:
            take, release = "SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"
        with self.engine.connect() as connection:  # the lock dies with the connection if this process does
            connection.execute(sqlalchemy.text(take), {"key": key, "name": name})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text(release), {"key": key, "name": name})
                connection.commit()
