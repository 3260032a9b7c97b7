"""The process environment of one installation: where it keeps its data and its secret.

Everything an operator sets with environment variables is read here, once, into an
`Environment`. Config properties that an admin changes at run time live in `properties.py`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from printsrv.errors import ConfigError

DEFAULT_HOME = "./var"
SECRET_FILE_NAME = "secret.key"  # noqa: S105 (a file name, not a secret)
MIN_SECRET_LENGTH = 32
# The file deploy/printsrv.service reads (EnvironmentFile=). When PRINTSRV_HOME is not set,
# printsrv reads it too, so `printsrv config set ...` on a service's machine works on the
# service's installation instead of making a new one in ./var. PRINTSRV_ENV_FILE names
# another file (tests, several installations on one machine).
SERVICE_ENV_FILE = "/etc/printsrv/printsrv.env"


@dataclass(frozen=True)
class Environment:
    """Where an installation keeps its data, and how to reach its database.

    home:          the data directory (`PRINTSRV_HOME`, default `./var`): SQLite file, PDFs,
                   the generated installation secret.
    database_url:  an SQLAlchemy URL (`PRINTSRV_DATABASE_URL`); default a SQLite file in home.
    secret_key:    the installation secret (`PRINTSRV_SECRET_KEY`), or None to use (or make)
                   `home/secret.key`. Every worker and machine of one installation must share it.
    """

    home: Path
    database_url: str
    secret_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        secret = "[secure]" if self.secret_key else None
        return f"Environment(home={str(self.home)!r}, database_url=..., secret_key={secret})"


def service_env_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The environment file whose variables apply, or None.

    PRINTSRV_ENV_FILE when set (it must exist then: a typo should not silently fall back
    to ./var); else /etc/printsrv/printsrv.env when PRINTSRV_HOME is not set and the file
    exists. A PRINTSRV_HOME in the environment wins: that is how the unit runs `serve`.
    """
    environ = os.environ if environ is None else environ
    named = environ.get("PRINTSRV_ENV_FILE")
    if named:
        path = Path(named).expanduser()
        if not path.exists():
            raise ConfigError(f"PRINTSRV_ENV_FILE names {path}, which does not exist")
        return path
    if environ.get("PRINTSRV_HOME"):
        return None
    path = Path(SERVICE_ENV_FILE)
    return path if path.exists() else None


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=VALUE assignments of a systemd EnvironmentFile (comments and blanks skipped).

    Values may be quoted ("..." or '...'); nothing is expanded, as systemd expands nothing.
    A file that cannot be read is a ConfigError that says what to do, because on a service's
    machine the file is how the command finds the installation.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"{path} cannot be read ({error.strerror}): it names the installation of the "
            "printsrv service. Run the command as the service's user (sudo -u printsrv "
            "printsrv ...) or as root, or set PRINTSRV_HOME (and PRINTSRV_DATABASE_URL, "
            "PRINTSRV_SECRET_KEY) yourself"
        ) from None
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key:
            values[key] = value
    return values


def with_env_file(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` with the service's environment file (see `service_env_file`) filled in.

    A variable set in `environ` wins over the file's, as it would for a command run with
    `PRINTSRV_DATABASE_URL=... printsrv ...`.
    """
    environ = dict(os.environ if environ is None else environ)
    path = service_env_file(environ)
    if path is None:
        return environ
    return {**read_env_file(path), **{k: v for k, v in environ.items() if v != ""}}


def load_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """Read PRINTSRV_HOME, PRINTSRV_DATABASE_URL and PRINTSRV_SECRET_KEY.

    From the process environment, else from the service's environment file (see
    `service_env_file`), else the defaults (`./var`, SQLite in it, a generated secret).
    """
    environ = with_env_file(environ)
    home = Path(environ.get("PRINTSRV_HOME") or DEFAULT_HOME).expanduser().resolve()
    url = environ.get("PRINTSRV_DATABASE_URL") or f"sqlite:///{home / 'printsrv.db'}"
    secret = environ.get("PRINTSRV_SECRET_KEY") or None
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"PRINTSRV_SECRET_KEY is {len(secret)} characters long: "
            f"it must have at least {MIN_SECRET_LENGTH}"
        )
    return Environment(home=home, database_url=url, secret_key=secret)


def describe_database(url: str) -> str:
    """The database URL as it may be shown: any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL: show nothing of it rather than risk a secret
        return "(a malformed database URL)"


def prepare_home(env: Environment) -> None:
    """Create the data directory (mode 0700) if it does not exist yet."""
    env.home.mkdir(parents=True, exist_ok=True, mode=0o700)


def installation_secret(env: Environment, *, create: bool = True) -> bytes:
    """The installation secret that keys for hashing and token encryption derive from.

    Taken from PRINTSRV_SECRET_KEY when set; otherwise read from `home/secret.key`, which is
    generated on first use. Several workers may start at once: the file is written under a
    temporary name and linked into place, so a reader never sees half a key and the first
    writer wins. With `create=False` a missing file is a ConfigError: a new secret would
    silently invalidate every stored hash of an existing installation.
    """
    if env.secret_key:
        return env.secret_key.encode("utf-8")
    path = env.home / SECRET_FILE_NAME
    if not create and not path.exists():
        raise ConfigError(
            f"{path} does not exist and PRINTSRV_SECRET_KEY is not set: this installation's "
            "secret is missing (restore it from a backup, or set PRINTSRV_SECRET_KEY as the "
            "server has it)"
        )
    prepare_home(env)
    if not path.exists():
        tmp = env.home / f".{SECRET_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; use its key
        finally:
            tmp.unlink()
    value = path.read_text("ascii").strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{path} holds no usable secret (shorter than {MIN_SECRET_LENGTH})")
    return value.encode("ascii")
