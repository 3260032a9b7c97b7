"""The REST admin document log, GET /restful/v1/documents, at 64 connections, next to a bare
endpoint answering the same bytes.

    python -m bench.rest_documents [--seconds 5] [--rounds 3] [--documents 500]

printsrv checks the admin's Basic credentials and the address allowlist, reads one page of
the document log (the contract's default: 5 items, newest first) from PostgreSQL and
serialises it; the baseline (bench/bare_app.py) answers the bytes printsrv answered, under
the same uvicorn settings, in the same run. Target (issue 7): at least 0.4 of the baseline.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import shutil
import tempfile
from pathlib import Path

import httpx

from bench.common import (
    PG_URL,
    SECRET,
    Load,
    Row,
    alternate,
    bare_server,
    load_rows,
    print_table,
    printsrv_server,
    private_schema,
    wrk,
)
from printsrv.documents import log as documents
from printsrv.documents.store import StoredPdf
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import open_installation
from printsrv.people import users
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment

ADMIN = ("admin", "bench-admin-password")
HEADERS = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}
PATH = "/restful/v1/documents"
TITLE = (
    "REST admin GET /documents (5 items), wrk -t1 -c64, 1 worker (target, issue 22: ratio >= 0.6)"
)


def prepare(home: Path, url: str, count: int) -> None:
    """Migrate, set the admin's credentials, and log `count` uploads of one user."""
    installation = open_installation(Environment(home=home, database_url=url, secret_key=SECRET))
    upgrade_schema(installation.db)
    with installation.db.transaction() as session:
        for name, value in (
            ("api.restful.auth.username", ADMIN[0]),
            ("api.restful.auth.password", ADMIN[1]),
        ):
            config.set_property(session, name, value, hasher=installation.hasher, actor="bench")
        user = users.add_user(session, "bench")
        for n in range(count):
            digest = hashlib.sha256(str(n).encode()).hexdigest()
            documents.log_upload(
                session,
                user=user,
                title=f"report-{n}.pdf",
                pdf=StoredPdf(sha256=digest, size=1000 + n, path=home / digest, created=True),
                pages=1 + n % 7,
                source_type="pdf",
                source_bytes=1000 + n,
                source_sha256=digest,
                client_address="127.0.0.1",
                queue_name="webservice",
                ipp_options="{}",
                ext_id=f"bench-{n}",
            )
    installation.db.dispose()


def measure_printsrv(home: Path, url: str, seconds: int) -> Load:
    """One run of GET /documents as the admin against printsrv."""
    with printsrv_server(home, url, cpus="0") as server:
        return wrk(f"http://127.0.0.1:{server.port}{PATH}", headers=HEADERS, seconds=seconds,
                   cpus="1")  # fmt: skip


def measure_bare(body: Path, seconds: int) -> Load:
    """One run of the bare endpoint answering the bytes in `body`."""
    with bare_server(cpus="0", env={"BENCH_BARE_DOCUMENTS_FILE": str(body)}) as bare:
        return wrk(f"http://127.0.0.1:{bare.port}{PATH}", headers=HEADERS, seconds=seconds,
                   cpus="1")  # fmt: skip


def figures(
    *, seconds: int = 5, rounds: int = 3, count: int = 500, database_url: str = PG_URL
) -> list[Row]:
    """GET /documents as the admin next to a bare endpoint answering the same bytes.

    The two take turns `rounds` times (bench.common.alternate).
    """
    work = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    try:
        with private_schema(database_url, "documents") as url:
            home = work / "home"
            prepare(home, url, count)
            body = work / "documents.json"
            with printsrv_server(home, url) as server:
                answer = httpx.get(f"http://127.0.0.1:{server.port}{PATH}", headers=HEADERS)
                answer.raise_for_status()
                body.write_bytes(answer.content)
            ours, base = alternate(
                functools.partial(measure_printsrv, home, url, seconds),
                functools.partial(measure_bare, body, seconds),
                rounds=rounds,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_rows("GET /documents", ours, base, target=">= 0.6")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, taking turns")
    parser.add_argument("--documents", type=int, default=500, help="document log entries")
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    rows = figures(
        seconds=args.seconds,
        rounds=args.rounds,
        count=args.documents,
        database_url=args.database_url,
    )
    print_table(TITLE, rows)


if __name__ == "__main__":
    main()
