"""Request ids, structured logs without secrets, and /metrics, on the real server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from support import (
    JSONRPC_KEY,
    LiveServer,
    ServeProcess,
    open_jsonrpc,
    set_config,
    wait_until,
)

from printsrv.operations.installation import Installation
from printsrv.people import users

ADMIN = ("admin", "admin-password")  # what open_jsonrpc sets


def test_every_answer_carries_a_request_id(live_server: LiveServer) -> None:
    first = httpx.get(f"{live_server.url}/restful/v1/system/version")
    second = httpx.get(f"{live_server.url}/nowhere")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    kept = httpx.get(
        f"{live_server.url}/restful/v1/system/version", headers={"X-Request-Id": "lb-1234.abc"}
    )
    assert kept.headers["x-request-id"] == "lb-1234.abc"
    replaced = httpx.get(
        f"{live_server.url}/restful/v1/system/version",
        headers={"X-Request-Id": "<script>" + "x" * 100},
    )
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_metrics_are_for_the_admin_only(installation: Installation) -> None:
    open_jsonrpc(installation)
    server = LiveServer(installation).start()
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        httpx.get(f"{server.url}/restful/v1/system/version")
        httpx.post(
            f"{server.url}/jsonrpc/v1",
            headers={"X-Auth-Key": JSONRPC_KEY},
            content='{"jsonrpc":"2.0","id":1,"method":"systemStatus"}',
        )
        response = httpx.get(f"{server.url}/metrics", auth=ADMIN)
    finally:
        server.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(
        r'printsrv_http_requests_total\{api="rest",method="GET",'
        r'route="/system/version",status="200"\} [1-9]',
        text,
    )
    assert 'printsrv_http_requests_total{api="jsonrpc",method="POST",route="/jsonrpc/v1"' in text
    assert "printsrv_http_request_duration_seconds_bucket" in text
    assert "printsrv_db_pool_connections_in_use" in text
    assert "# TYPE printsrv_ledger_transactions gauge" in text
    assert "# TYPE printsrv_print_jobs gauge" in text
    assert "printsrv_pages_printed 0.0" in text


SECRETS = {
    "admin password": "Adm1n-S3cret-pw",
    "jsonrpc key": "K3y-0f-The-JsonRpc-Caller",
    "wrong key": "Guess3d-Key-value",
    "user password": "Us3r-Pa55word",
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_json_logs_carry_request_ids_and_never_a_secret(
    installation: Installation, tmp_path: Path
) -> None:
    set_config(
        installation,
        {
            "api.restful.auth.username": "admin",
            "api.restful.auth.password": SECRETS["admin password"],
            "api.jsonrpc.secret-key": SECRETS["jsonrpc key"],
            "api.jsonrpc.ext.ip-addresses-allowed": "127.0.0.1",
        },
    )
    with installation.db.transaction() as session:
        users.add_user(session, "janet", password=SECRETS["user password"])
        credential = users.issue_uuid(session, "janet", hasher=installation.hasher)
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
        "PRINTSRV_LOG_FORMAT": "json",
    }
    server = ServeProcess(env, log=tmp_path / "server.log").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        echo = httpx.post(
            f"{base}/restful/v1/tests/echo", content="hi", auth=("admin", SECRETS["admin password"])
        )
        assert echo.status_code == 200
        httpx.post(f"{base}/restful/v1/tests/echo", content="x", auth=("admin", "wrong-one"))
        for key in (SECRETS["jsonrpc key"], SECRETS["wrong key"]):
            httpx.post(
                f"{base}/jsonrpc/v1",
                headers={"X-Auth-Key": key},
                content=json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "authUserSource",
                        "params": {"username": "janet", "password": SECRETS["user password"]},
                    }
                ),
            )
        httpx.get(f"{base}/restful/v1/tests/http/request", auth=("janet", credential))
    finally:
        server.stop()
    log = server.output()
    for what, secret in {**SECRETS, "uuid": credential}.items():
        assert secret not in log, f"the {what} reached the log"
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines, log
    access = [line for line in lines if line["logger"] == "printsrv.access"]
    echo_line = next(
        line for line in access if line.get("request_id") == echo.headers["x-request-id"]
    )
    assert (echo_line["method"], echo_line["path"], echo_line["status"]) == (
        "POST",
        "/restful/v1/tests/echo",
        200,
    )
    assert any("access denied" in line["message"] and line.get("request_id") for line in lines)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_add_up_across_workers(installation: Installation, tmp_path: Path) -> None:
    open_jsonrpc(installation)
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
    }
    server = ServeProcess(env, "--workers", "2", log=tmp_path / "workers.log").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        for _ in range(40):  # new connections, so both workers get some
            httpx.get(f"{base}/restful/v1/tests/http/request", headers={"Connection": "close"})

        def counted() -> float:
            text = httpx.get(f"{base}/metrics", auth=ADMIN).text
            match = re.search(
                r'printsrv_http_requests_total\{api="rest",method="GET",'
                r'route="/tests/http/request",status="200"\} ([\d.]+)',
                text,
            )
            return float(match[1]) if match else 0.0

        # Each worker hands its figures over within a second (RequestTally).
        wait_until(lambda: counted() == 40, timeout=3, interval=0.2)
    finally:
        server.stop()
