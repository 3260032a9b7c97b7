"""Backups of a running installation, and restoring one into an empty home.

A backup is one tar file: `manifest.json`, the database (`database.sqlite` made with
SQLite's online backup API, or `database.pgdump` made with `pg_dump -Fc`), the stored PDFs
(`home/documents`) and `secret.key` when the installation keeps its secret in the home
(without the secret, restored API keys, passwords and UUIDs could not be verified). The
database is copied first and the PDFs after, so every document the copied database names
is in the backup; a PDF stored meanwhile is an orphan that nothing refers to. While a
backup runs it registers a batch job: `systemStatus` answers UNAVAILABLE.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from printsrv import __version__
from printsrv.errors import Conflict, InvalidInput, ServiceUnavailable
from printsrv.operations.installation import Installation
from printsrv.operations.status import batch_job
from printsrv.platform.environment import SECRET_FILE_NAME, Environment

FORMAT = 1
STORED_DIRECTORIES = ("documents",)


@dataclass(frozen=True)
class BackupInfo:
    """What a backup holds."""

    path: Path
    backend: str
    documents: int
    created: str


def _pg_command_env(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq connection arguments and environment for pg_dump/pg_restore from a URL."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)  # never on the command line, where ps shows it
    args = [
        "--host",
        parsed.host or "localhost",
        "--port",
        str(parsed.port or 5432),
        "--username",
        parsed.username or "postgres",
        "--dbname",
        parsed.database or "",
    ]
    options = parsed.query.get("options")
    if options:
        env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
    return args, env


def _dump_database(installation: Installation, target: Path) -> str:
    db = installation.db
    if db.backend == "sqlite":
        source_path = make_url(db.url).database or ""
        # The online backup API copies a consistent snapshot while writers carry on.
        with sqlite3.connect(source_path) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        return "database.sqlite"
    args, env = _pg_command_env(db.url)
    with db.read() as session:
        schema = session.connection().exec_driver_sql("SELECT current_schema()").scalar()
    result = subprocess.run(
        [
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--schema={schema}",
            "--file",
            str(target),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(
            f"pg_dump failed: {result.stderr.strip()[-500:]}", reason="pg_dump"
        )
    return "database.pgdump"


def create_backup(
    installation: Installation,
    output: Path | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> BackupInfo:
    """Write a consistent backup of the installation (database, PDFs, secret) to `output`.

    `progress`, when given, hears 0..100 by steps: the database copied (40), then each
    stored file added, then the backup file in place (100).
    """
    report_progress = progress or (lambda percent: None)
    created = datetime.now(UTC)
    output = output or installation.env.home / "backups" / f"printsrv-{created:%Y%m%dT%H%M%SZ}.tar"
    output.parent.mkdir(parents=True, exist_ok=True)
    with batch_job(installation.db, "backup"), tempfile.TemporaryDirectory() as work:
        dump = Path(work) / "database"
        database_name = _dump_database(installation, dump)
        report_progress(40)
        manifest = {
            "format": FORMAT,
            "printsrv": __version__,
            "created": created.isoformat(),
            "backend": installation.db.backend,
            "database": database_name,
        }
        partial = output.with_name(output.name + ".partial")
        documents = 0
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, fileobj=io.BytesIO(data))
            tar.add(dump, arcname=database_name)
            secret = installation.env.home / SECRET_FILE_NAME
            if secret.exists() and not installation.env.secret_key:
                tar.add(secret, arcname=SECRET_FILE_NAME)
            for directory in STORED_DIRECTORIES:
                root = installation.env.home / directory
                if root.is_dir():
                    paths = sorted(p for p in root.rglob("*") if p.is_file())
                    for done, path in enumerate(paths, 1):
                        tar.add(path, arcname=f"home/{path.relative_to(installation.env.home)}")
                        documents += 1
                        report_progress(40 + done * 55 // len(paths))
        partial.replace(output)  # a backup file is either whole or absent
        report_progress(100)
    return BackupInfo(output, manifest["backend"], documents, manifest["created"])


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for member in tar.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise InvalidInput(f"Backup holds an unsafe entry {member.name!r}")
        members.append(member)
    return members


def restore_backup(env: Environment, backup: Path) -> BackupInfo:
    """Restore `backup` into the empty home (and empty database) that `env` names.

    Refuses a home that already has data or a database that already has tables, so a
    restore never mixes two installations.
    """
    if env.home.exists() and any(env.home.iterdir()):
        raise Conflict(f"{env.home} is not empty: restore into a new home")
    try:
        tar = tarfile.open(backup, mode="r")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as error:
        raise InvalidInput(f"{backup} is not a printsrv backup: {error}") from None
    with tar, tempfile.TemporaryDirectory() as work:
        members = _safe_members(tar)
        tar.extractall(work, members=members, filter="data")
        manifest_path = Path(work) / "manifest.json"
        if not manifest_path.exists():
            raise InvalidInput(f"{backup} has no manifest.json: not a printsrv backup")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise InvalidInput(f"Backup format {manifest.get('format')!r} is not supported")
        backend = make_url(env.database_url).get_backend_name()
        if backend != manifest["backend"]:
            raise InvalidInput(
                f"The backup is of a {manifest['backend']} database; PRINTSRV_DATABASE_URL "
                f"names {backend}"
            )
        env.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        dump = Path(work) / manifest["database"]
        if backend == "sqlite":
            target = Path(make_url(env.database_url).database or "")
            if target.exists():
                raise Conflict(f"{target} exists already: restore into a new database")
            shutil.copyfile(dump, target)
        else:
            _restore_postgresql(env.database_url, dump)
        documents = 0
        home_copy = Path(work) / "home"
        if home_copy.is_dir():
            for path in sorted(p for p in home_copy.rglob("*") if p.is_file()):
                destination = env.home / path.relative_to(home_copy)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
                documents += 1
        secret = Path(work) / SECRET_FILE_NAME
        if secret.exists():
            shutil.copyfile(secret, env.home / SECRET_FILE_NAME)
            os.chmod(env.home / SECRET_FILE_NAME, 0o600)
    return BackupInfo(backup, manifest["backend"], documents, manifest["created"])


def _restore_postgresql(url: str, dump: Path) -> None:
    args, env = _pg_command_env(url)

    def psql(query: str) -> str:
        result = subprocess.run(
            ["psql", "-tAc", query, *args], env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"psql failed: {result.stderr.strip()[-500:]}", reason="psql")
        return result.stdout.strip()

    if psql("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") not in ("", "0"):
        raise Conflict("The target database already has tables: restore into an empty one")
    existing = set(psql("SELECT nspname FROM pg_namespace").split())
    listing = subprocess.run(
        ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
    ).stdout
    # A schema the target has already (public, in a new database) must not be created
    # again: comment its entry out of the restore list.
    kept = []
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[3:5] == ["SCHEMA", "-"] and parts[5] in existing:
            line = ";" + line
        kept.append(line)
    toc = dump.with_suffix(".list")
    toc.write_text("\n".join(kept) + "\n")
    result = subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--use-list",
            str(toc),
            *args,
            str(dump),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(
            f"pg_restore failed: {result.stderr.strip()[-500:]}", reason="pg_restore"
        )
