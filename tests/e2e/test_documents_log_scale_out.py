"""The document log's page cache across two `printsrv serve` processes on one PostgreSQL: a
write through one server (or any other process) shows on the other within a moment."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import update
from sqlalchemy.engine import make_url
from support import ServeProcess, empty_postgresql, wait_until

from printsrv.documents.log import run_retention
from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore
from printsrv.platform.models import utcnow

pytestmark = pytest.mark.skipif(
    not os.environ.get("PRINTSRV_TEST_DATABASE_URL"), reason="needs PostgreSQL"
)
SHOWS_WITHIN = 2.0  # seconds; typically a few milliseconds (the NOTIFY's trip)


@pytest.fixture(params=["postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: SQLite is not cached (and is one file on one machine)."""
    url = request.getfixturevalue("postgresql_schema_url")
    empty_postgresql(url)
    return url


@pytest.fixture
def two_servers(
    printing_setup: PrintSetup,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    installation = printing_setup.installation
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
    }
    first = ServeProcess(env, log=tmp_path / "a.log").start()
    second = ServeProcess(env, log=tmp_path / "b.log").start()
    try:
        yield f"http://127.0.0.1:{first.port}", f"http://127.0.0.1:{second.port}"
    finally:
        first.stop()
        second.stop()


def log_page(base: str) -> list[dict[str, object]]:
    response = httpx.get(f"{base}/restful/v1/documents", auth=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def shows_within(condition: Callable[[list[dict[str, object]]], bool], base: str) -> float:
    """Seconds until ``condition(page)`` holds for the page ``base`` serves."""
    started = time.monotonic()
    wait_until(lambda: condition(log_page(base)), timeout=SHOWS_WITHIN, interval=0.005)
    return time.monotonic() - started


def test_an_upload_on_one_server_shows_in_the_others_log(
    printing_setup: PrintSetup,  # noqa: F811
    two_servers: tuple[str, str],
) -> None:
    a, b = two_servers
    first = upload(a, printing_setup.auth, "first.pdf", pdf_bytes(1))
    assert first.status_code == 200, first.text
    # Both servers listen from their start; B's listener may need a moment after /version.
    wait_until(lambda: [d["id"] for d in log_page(b)] == [first.json()["id"]], timeout=5)

    second = upload(a, printing_setup.auth, "second.pdf", pdf_bytes(2))
    assert second.status_code == 200, second.text
    delay = shows_within(lambda page: page[0]["id"] == second.json()["id"], b)
    print(f"upload on A shown on B after {delay * 1000:.1f} ms")
    assert [d["title"] for d in log_page(b)] == ["second.pdf", "first.pdf"]


def test_a_raw_sql_update_from_psql_shows_in_every_servers_log(
    printing_setup: PrintSetup,  # noqa: F811
    two_servers: tuple[str, str],
) -> None:
    # Issue 21: a write that bypasses printsrv (an admin's psql, a script) used to leave
    # every server answering from its cache until restarted; the database's own triggers
    # now tell them.
    a, b = two_servers
    uploaded = upload(a, printing_setup.auth, "before.pdf", pdf_bytes(1))
    assert uploaded.status_code == 200, uploaded.text
    for base in (a, b):
        wait_until(lambda base=base: [d["title"] for d in log_page(base)] == ["before.pdf"])
        assert log_page(base)[0]["title"] == "before.pdf"  # now from the cache

    url = make_url(printing_setup.installation.env.database_url)
    schema = url.query["options"].removeprefix("-csearch_path=")  # type: ignore[union-attr]
    plain = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    # psql's own search_path (public): the table is named with its schema.
    subprocess.run(
        ["psql", plain, "-v", "ON_ERROR_STOP=1", "-c",
         f'UPDATE "{schema}".document SET title = \'renamed-by-psql.pdf\''],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    for base in (a, b):
        delay = shows_within(lambda page: page[0]["title"] == "renamed-by-psql.pdf", base)
        print(f"psql's UPDATE shown on {base} after {delay * 1000:.1f} ms")


def test_retention_elsewhere_flips_store_in_the_log_of_a_server(
    printing_setup: PrintSetup,  # noqa: F811
    two_servers: tuple[str, str],
) -> None:
    a, b = two_servers
    installation = printing_setup.installation
    uploaded = upload(a, printing_setup.auth, "old.pdf", pdf_bytes(1))
    assert uploaded.status_code == 200, uploaded.text
    with installation.db.transaction() as session:
        session.execute(
            update(Document)
            .where(Document.id == uploaded.json()["id"])
            .values(created_at=utcnow() - timedelta(days=3))
        )
    wait_until(lambda: [d["store"] for d in log_page(b)] == [True], timeout=5)
    # Retention as the housekeeping of another server (here: this test's process) runs it.
    assert run_retention(installation.db, PdfStore(installation.env.home), days=1) == 1
    delay = shows_within(lambda page: page[0]["store"] is False, b)
    print(f"retention shown on B after {delay * 1000:.1f} ms")
    assert log_page(a)[0]["store"] is False
