"""A database that goes away: 503 with a message, and recovery without a restart."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url
from support import TEST_SECRET, LiveServer, TcpProxy, empty_postgresql, set_config, wait_until

from printsrv.operations.installation import open_installation
from printsrv.platform.environment import Environment

# Only PostgreSQL can "go down" under a running server: SQLite is a file in the process.
pytestmark = pytest.mark.skipif(
    not os.environ.get("PRINTSRV_TEST_DATABASE_URL"), reason="needs PostgreSQL"
)


@pytest.fixture
def proxied_url(postgresql_schema_url: str) -> Iterator[tuple[str, TcpProxy]]:
    empty_postgresql(postgresql_schema_url)
    url = make_url(postgresql_schema_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.stop()


PASSWORD = "pw-0123456789"  # an admin password needs 12 characters


def test_database_outage_gives_503_and_the_server_recovers(
    proxied_url: tuple[str, TcpProxy], tmp_path: object
) -> None:
    url, proxy = proxied_url
    env = Environment(home=tmp_path / "home", database_url=url, secret_key=TEST_SECRET)  # type: ignore[operator]
    installation = open_installation(env)
    installation.config.stale_after = 1.0
    set_config(
        installation,
        {"api.restful.auth.username": "admin", "api.restful.auth.password": PASSWORD},
    )
    server = LiveServer(installation).start()
    echo = f"{server.url}/restful/v1/tests/echo"
    try:
        assert httpx.post(echo, auth=("admin", PASSWORD), content="up").status_code == 200

        proxy.stop()
        down = wait_until(
            lambda: (
                (r := httpx.post(echo, auth=("admin", PASSWORD), content="x")).status_code == 503
                and r
            ),
            timeout=15,
        )
        assert "database" in down.json()["error"].lower()
        assert down.headers["retry-after"]
        version = httpx.get(f"{server.url}/restful/v1/system/version")
        assert version.status_code == 200, "what needs no database keeps working"

        proxy.start()
        wait_until(
            lambda: httpx.post(echo, auth=("admin", PASSWORD), content="x").status_code == 200,
            timeout=15,
        )
    finally:
        server.stop()
        installation.db.dispose()


def test_a_csv_report_asked_for_while_the_database_is_down_is_a_503(
    proxied_url: tuple[str, TcpProxy], tmp_path: object
) -> None:
    """Found by the soak (bench/soak.py): while PostgreSQL restarted, a CSV report was a 500
    (the stream's session reads outside the block that maps a lost database to a 503)."""
    url, proxy = proxied_url
    env = Environment(home=tmp_path / "home", database_url=url, secret_key=TEST_SECRET)  # type: ignore[operator]
    installation = open_installation(env)
    installation.config.stale_after = 60.0  # the config stays trusted: the report itself runs
    set_config(
        installation,
        {"api.restful.auth.username": "admin", "api.restful.auth.password": PASSWORD},
    )
    server = LiveServer(installation).start()
    report = f"{server.url}/restful/v1/reports/accounttrx"
    body = {"select": {"account_type": "USER"}, "media_type": "CSV"}
    try:
        assert httpx.post(report, json=body, auth=("admin", PASSWORD)).status_code == 200
        proxy.stop()
        down = httpx.post(report, json=body, auth=("admin", PASSWORD))
        assert down.status_code == 503, down.text
        assert "database" in down.json()["error"].lower()
        assert down.headers["retry-after"]
    finally:
        server.stop()
        installation.db.dispose()
