"""One installation's shared parts, built once per process: environment, database, keys, config.

The app, the CLI and the tests all build an `Installation` and hand its parts to services.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from printsrv import config
from printsrv.config import Config
from printsrv.db import Database
from printsrv.document_log_cache import DocumentLogCache
from printsrv.security import SecretHasher, derive_key
from printsrv.settings import Environment, installation_secret, load_environment, prepare_home
from printsrv.system import SystemMonitor

FIRST_ADMIN_NAME = "admin"


@dataclass
class Installation:
    """The environment, database, secret keys and config of one printsrv installation."""

    env: Environment
    db: Database
    hasher: SecretHasher
    token_key: bytes
    config: Config
    monitor: SystemMonitor
    document_log: DocumentLogCache  # pages of GET /documents; listens from the app's lifespan

    def __repr__(self) -> str:
        return f"Installation(home={str(self.env.home)!r}, db={self.db!r})"


def open_installation(env: Environment | None = None) -> Installation:
    """Build the installation from the environment (PRINTSRV_HOME, PRINTSRV_DATABASE_URL, ...)."""
    env = env or load_environment()
    prepare_home(env)
    secret = installation_secret(env)
    db = Database(env.database_url)
    hasher = SecretHasher(derive_key(secret, "printsrv config and credential hashes"))
    return Installation(
        env=env,
        db=db,
        hasher=hasher,
        token_key=derive_key(secret, "printsrv one-time login tokens"),
        config=Config(db, hasher),
        monitor=SystemMonitor(db),
        document_log=DocumentLogCache(env.database_url),
    )


def ensure_first_admin(installation: Installation) -> tuple[str, str] | None:
    """Set up REST admin credentials on a fresh installation.

    Returns (user name, password) the one time they are created, so `printsrv serve` can
    print them; None when an admin password exists already.
    """
    with installation.db.transaction() as session:
        stored = config.stored_values(session)
        if stored.get("api.restful.auth.password"):
            return None
        username = stored.get("api.restful.auth.username") or FIRST_ADMIN_NAME
        password = secrets.token_urlsafe(18)
        hasher = installation.hasher
        config.set_property(
            session, "api.restful.auth.username", username, hasher=hasher, actor="first start"
        )
        config.set_property(
            session, "api.restful.auth.password", password, hasher=hasher, actor="first start"
        )
    return username, password
