"""One installation's shared parts, built once per process: environment, database, keys, config.

The app, the CLI and the tests all build an `Installation` and hand its parts to services.
Only `printsrv serve`, `printsrv init` and `printsrv backup restore` may create one; every
other command opens it with `create=False`, which refuses (and creates nothing) when the
environment names a home or database that was never set up, so a command run from the
wrong directory cannot quietly start a second, empty installation.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from printsrv.documents.log_cache import DocumentLogCache
from printsrv.errors import ConfigError, DatabaseUnavailable
from printsrv.operations.status import SystemMonitor
from printsrv.platform import properties as config
from printsrv.platform.database import Database, serialise_on
from printsrv.platform.environment import (
    SECRET_FILE_NAME,
    SERVICE_ENV_FILE,
    Environment,
    describe_database,
    installation_secret,
    load_environment,
    prepare_home,
    service_env_file,
)
from printsrv.platform.models import SecretFingerprint
from printsrv.platform.notifications import Listener
from printsrv.platform.properties import Config, Snapshot
from printsrv.platform.security import SecretHasher, derive_key, secret_fingerprint

log = logging.getLogger(__name__)

FIRST_ADMIN_NAME = "admin"
# Where the first start leaves the generated admin password: a file only the server's
# user can read, instead of stdout, which under systemd is kept in the journal.
INITIAL_PASSWORD_FILE = "initial-admin-password"  # noqa: S105 (a file name, not a secret)
ADMIN_PASSWORD_PROPERTY = "api.restful.auth.password"  # noqa: S105 (a property name)


class NotInstalled(ConfigError):
    """The environment names a home or database that was never set up as an installation."""


class WrongSecret(ConfigError):
    """This machine's installation secret is not the one the database was set up with.

    Raised before serving (and before any command works on the database): with another
    secret, every stored password, API key and user UUID would fail to match, and every
    credential would be refused with nothing to say why.
    """


@dataclass
class Installation:
    """The environment, database, secret keys and config of one printsrv installation."""

    env: Environment
    db: Database
    hasher: SecretHasher
    token_key: bytes
    config: Config
    monitor: SystemMonitor
    # Other processes' changes, heard from the app's lifespan (PostgreSQL only).
    notifications: Listener
    document_log: DocumentLogCache  # pages of GET /documents
    secret_fingerprint: str  # what the database keeps to recognise the secret (check_secret)

    def __repr__(self) -> str:
        return f"Installation(home={str(self.env.home)!r}, db={self.db!r})"


def open_installation(env: Environment | None = None, *, create: bool = True) -> Installation:
    """Build the installation from the environment (PRINTSRV_HOME, PRINTSRV_DATABASE_URL, ...).

    With `create=False` the home and the database must have been set up before (see
    `check_installed`): NotInstalled otherwise, and nothing is created on disk or in the
    database. The default creates the home and the secret, as `printsrv serve` does.
    """
    env = env or load_environment()
    if create:
        prepare_home(env)
    else:
        check_installed(env)
    secret = installation_secret(env, create=create)
    db = Database(env.database_url)
    hasher = SecretHasher(derive_key(secret, "printsrv config and credential hashes"))
    notifications = Listener(env.database_url)
    installation = Installation(
        env=env,
        db=db,
        hasher=hasher,
        token_key=derive_key(secret, "printsrv one-time login tokens"),
        config=Config(db, hasher, notifications),
        monitor=SystemMonitor(db, notifications),
        notifications=notifications,
        document_log=DocumentLogCache(env.database_url, listener=notifications),
        secret_fingerprint=secret_fingerprint(secret),
    )
    # Whoever changes the admin password (this process, another worker, another machine),
    # every server notices on its next config refresh and removes the stale file.
    installation.config.on_change.append(partial(forget_initial_password, env))
    return installation


# --- is there an installation? -----------------------------------------------------------------


def check_installed(env: Environment) -> None:
    """NotInstalled unless `env` names a home that exists and a database with printsrv's schema.

    Looks without touching: a SQLite file is opened read-only (and only if it exists), a
    PostgreSQL database is only read. The message names the home and the database (its
    password hidden) that were looked at, and how to point at the right ones.
    """
    if not env.home.is_dir():
        raise NotInstalled(_not_installed_message(env, "the home directory does not exist"))
    try:
        present = has_schema(env.database_url)
    except DatabaseUnavailable as error:
        raise DatabaseUnavailable(
            f"The database {describe_database(env.database_url)} of the installation at "
            f"{env.home} cannot be reached; nothing was changed. Check that it runs, and "
            "PRINTSRV_DATABASE_URL (or the environment file that sets it)."
        ) from error
    if not present:
        raise NotInstalled(
            _not_installed_message(env, "the database does not hold printsrv's tables")
        )


def has_schema(database_url: str) -> bool:
    """Whether the database exists and printsrv's migrations have run in it; creates nothing.

    DatabaseUnavailable when a PostgreSQL server cannot be reached (that is not "empty").
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        db = Database(database_url)
        try:
            with db.read() as session:
                connection = session.connection()
                if not inspect(connection).has_table("alembic_version"):
                    return False
                return connection.execute(text("SELECT 1 FROM alembic_version")).first() is not None
        finally:
            db.dispose()
    name = url.database or ""
    if name in ("", ":memory:"):
        return False  # an in-memory database never holds an installation
    path = Path(name)
    if not path.is_file():
        return False
    # Not through the engine: its connect hook switches the file to WAL, which would write
    # to a file that may not even be printsrv's. First as an immutable file, which creates
    # no -wal/-shm files beside it; that misses what only a -wal file holds yet (a server
    # that has just migrated), so with a -wal file present, look again read-only.
    if _sqlite_has_schema(path, "immutable=1"):
        return True
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and _sqlite_has_schema(path, "mode=ro")


def _sqlite_has_schema(path: Path, options: str) -> bool:
    uri = f"file:{quote(str(path.resolve()))}?{options}"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as connection:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            if found is None:
                return False
            return connection.execute("SELECT 1 FROM alembic_version").fetchone() is not None
    except sqlite3.DatabaseError:
        return False  # not a SQLite database at all (or not readable as one)


def _not_installed_message(env: Environment, why: str) -> str:
    try:
        env_file = service_env_file()
    except ConfigError:
        env_file = None
    source = (
        f"read from {env_file}"
        if env_file is not None
        else "PRINTSRV_HOME" + (" is not set" if not os.environ.get("PRINTSRV_HOME") else "")
    )
    return (
        f"No printsrv installation at {env.home} ({source}; database "
        f"{describe_database(env.database_url)}): {why}. Nothing was created. To use an "
        "existing installation, point at it with PRINTSRV_HOME=/its/home (and "
        "PRINTSRV_DATABASE_URL, PRINTSRV_SECRET_KEY as the server has them), or with its "
        f"environment file ({SERVICE_ENV_FILE}, or PRINTSRV_ENV_FILE=/path/to/file). "
        "To set up a new one there, run `printsrv init`."
    )


# --- is this the installation's secret? --------------------------------------------------------


def check_secret(installation: Installation, *, adopt: bool) -> bool:
    """WrongSecret unless this machine's secret is the one the database was set up with.

    The database keeps a fingerprint of the secret (`SecretFingerprint`). With `adopt`
    (`printsrv serve`, `init`, `backup restore`: the commands that start an installation)
    a database that has none takes this machine's: the first start, or an installation set
    up before fingerprints were kept. Without it nothing is written, so a command run with
    the wrong secret can never make it the installation's. Returns whether it was adopted.
    """
    with installation.db.transaction() as session:
        # Machines starting together on a fresh database: the first to get here writes.
        serialise_on(session, "printsrv secret fingerprint")
        stored = session.get(SecretFingerprint, 1)
        if stored is None:
            if adopt:
                session.add(SecretFingerprint(id=1, fingerprint=installation.secret_fingerprint))
            return adopt
        if hmac.compare_digest(stored.fingerprint, installation.secret_fingerprint):
            return False
    env = installation.env
    where = "PRINTSRV_SECRET_KEY" if env.secret_key else f"{env.home / SECRET_FILE_NAME}"
    raise WrongSecret(
        f"The installation secret of this machine ({where}) is not the one the database "
        f"{describe_database(env.database_url)} was set up with: every stored password, API "
        "key and token would be refused. Nothing was changed. Give this machine the secret "
        "the installation's other machines use (their PRINTSRV_SECRET_KEY, or a copy of "
        f"their {SECRET_FILE_NAME}), or point PRINTSRV_DATABASE_URL at this machine's own "
        "database."
    )


# --- the first admin ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstAdmin:
    """The REST admin created on first start: its user name, and the file holding its password."""

    username: str
    password_file: Path


def initial_password_path(env: Environment) -> Path:
    """Where the first start leaves the generated admin password."""
    return env.home / INITIAL_PASSWORD_FILE


def ensure_first_admin(installation: Installation) -> FirstAdmin | None:
    """Set up REST admin credentials on a fresh installation.

    The password goes to `PRINTSRV_HOME/initial-admin-password` (mode 0600), never to
    stdout: under systemd stdout is the journal, readable by more people than the admin
    and kept for months. Returns the user name and that file's path the one time they are
    created; None when an admin password exists already.
    """
    password = secrets.token_urlsafe(18)
    path = initial_password_path(installation.env)
    # Written before the commit, so a password in the database is never one that no file
    # holds; linked into place only after it, so the file never holds a password that the
    # database does not.
    staged = _write_private_file(path, password + "\n")
    try:
        with installation.db.transaction() as session:
            # Two machines starting on one fresh database: without this, both could see no
            # password and the later commit would replace the one the earlier wrote to its file.
            serialise_on(session, "printsrv first admin")
            stored = config.stored_values(session)
            if stored.get(ADMIN_PASSWORD_PROPERTY):
                return None
            username = stored.get("api.restful.auth.username") or FIRST_ADMIN_NAME
            hasher = installation.hasher
            config.set_property(
                session, "api.restful.auth.username", username, hasher=hasher, actor="first start"
            )
            config.set_property(
                session, ADMIN_PASSWORD_PROPERTY, password, hasher=hasher, actor="first start"
            )
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return FirstAdmin(username, path)


def _write_private_file(path: Path, content: str) -> Path:
    """Write `content` to a new file beside `path`, mode 0600 from its creation; return it.

    O_CREAT with mode 0600 (and O_EXCL, O_NOFOLLOW) means there is no moment at which
    another user could open it, whatever the umask; os.replace later swaps it in whole.
    """
    staged = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(staged, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a umask can only take bits away; be explicit all the same
        os.write(fd, content.encode("utf-8"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        staged.unlink(missing_ok=True)
        raise
    os.close(fd)
    return staged


def forget_initial_password(env: Environment, snapshot: Snapshot) -> bool:
    """Delete `initial-admin-password` once it no longer holds the admin password.

    Called on every config change any process makes (the CLI's `config set` and `unset`,
    another worker or machine): the file is only a way to hand the first password over,
    and a stale one would mislead (and keep a once-valid secret on disk). Returns whether
    a file was deleted.
    """
    path = initial_password_path(env)
    try:
        written = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return False
    except OSError as error:
        log.warning("cannot read %s: %s", path, error.strerror)
        return False
    if snapshot[ADMIN_PASSWORD_PROPERTY].matches(written):
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    log.info("admin password changed; %s removed", path)
    return True
