"""The process environment of one installation: where it keeps its data and its secret.

Everything an operator sets with environment variables is read here, once, into an
`Environment`. Config properties that an admin changes at run time live in `config.py`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from printsrv.errors import ConfigError

DEFAULT_HOME = "./var"
SECRET_FILE_NAME = "secret.key"  # noqa: S105 (a file name, not a secret)
MIN_SECRET_LENGTH = 32


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


def load_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """Read PRINTSRV_HOME, PRINTSRV_DATABASE_URL and PRINTSRV_SECRET_KEY."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("PRINTSRV_HOME") or DEFAULT_HOME).expanduser().resolve()
    url = environ.get("PRINTSRV_DATABASE_URL") or f"sqlite:///{home / 'printsrv.db'}"
    secret = environ.get("PRINTSRV_SECRET_KEY") or None
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"PRINTSRV_SECRET_KEY is {len(secret)} characters long: "
            f"it must have at least {MIN_SECRET_LENGTH}"
        )
    return Environment(home=home, database_url=url, secret_key=secret)


def prepare_home(env: Environment) -> None:
    """Create the data directory (mode 0700) if it does not exist yet."""
    env.home.mkdir(parents=True, exist_ok=True, mode=0o700)


def installation_secret(env: Environment) -> bytes:
    """The installation secret that keys for hashing and token encryption derive from.

    Taken from PRINTSRV_SECRET_KEY when set; otherwise read from `home/secret.key`, which is
    generated on first use. Several workers may start at once: the file is written under a
    temporary name and linked into place, so a reader never sees half a key and the first
    writer wins.
    """
    if env.secret_key:
        return env.secret_key.encode("utf-8")
    prepare_home(env)
    path = env.home / SECRET_FILE_NAME
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
