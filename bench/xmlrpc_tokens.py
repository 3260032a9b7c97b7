"""One-time login tokens on PostgreSQL: created over XML-RPC, and spent by logging in.

    python -m bench.xmlrpc_tokens [--seconds 8] [--connections 16]

Each figure stands next to a baseline measured in the same run under the same uvicorn
settings: `bare_app` below, a bare Starlette app that parses the same XML-RPC body with the
same defused parser (or reads the same login form) and answers a constant. Servers and the
load (wrk) are separate processes on loopback, pinned to different cores, each phase
bounded by --seconds. The database is a private schema of PRINTSRV_BENCH_DATABASE_URL,
dropped at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import xmlrpc.client
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from defusedxml.xmlrpc import DefusedExpatParser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import (
    PG_URL,
    SECRET,
    Load,
    Row,
    Server,
    free_port,
    load_rows,
    lua_string,
    parse_wrk,
    print_table,
    printsrv_server,
    private_schema,
)

if TYPE_CHECKING:  # printsrv stays out of the baseline's process, which imports this module
    from printsrv.operations.installation import Installation

API_KEY = "bench-lms-api-key"
USER = "janet"
CREATE_BODY = xmlrpc.client.dumps((API_KEY, USER), "onetime-auth.createToken")
FORM = "application/x-www-form-urlencoded"

# --- the baseline app (served by uvicorn in its own process) ----------------------------------

_CONSTANT_TOKEN = xmlrpc.client.dumps(("A" * 56,), methodresponse=True).encode()


async def _bare_xmlrpc(request: Request) -> Response:
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(unmarshaller, forbid_dtd=True)
    parser.feed(await request.body())
    parser.close()
    unmarshaller.close()
    return Response(_CONSTANT_TOKEN, media_type="text/xml")


async def _bare_login(request: Request) -> Response:
    dict(parse_qsl((await request.body()).decode()))
    return Response(status_code=303, headers={"Location": "/user"})


async def _ping(request: Request) -> Response:
    return Response(b"ok")


bare_app = Starlette(
    routes=[
        Route("/xmlrpc/v1", _bare_xmlrpc, methods=["POST"]),
        Route("/user", _bare_login, methods=["POST"]),
        Route("/ping", _ping),
    ]
)


def bare_server(cpus: str | None) -> Server:
    """`bare_app` under the uvicorn settings `printsrv serve` uses (one worker, no logs)."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.xmlrpc_tokens:bare_app",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-proxy-headers",
        "--no-server-header",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(args, {}, port, "/ping", cpus)


# --- set-up -----------------------------------------------------------------------------------


def prepare(home: Path, database_url: str, token_count: int) -> tuple[Path, Installation]:
    """Migrate, switch token logins on, add the user; write `token_count` fresh tokens."""
    from printsrv.migrations import upgrade_schema
    from printsrv.operations.installation import open_installation
    from printsrv.people import tokens, users
    from printsrv.platform import properties as config
    from printsrv.platform.environment import Environment

    installation = open_installation(
        Environment(home=home, database_url=database_url, secret_key=SECRET)
    )
    upgrade_schema(installation.db)
    with installation.db.transaction() as session:
        for name, value in [
            ("web-login.ttp.enable", "Y"),
            ("web-login.ttp.apikey", API_KEY),
            ("web-login.ttp.token.expiry-msecs", "3600000"),
        ]:
            config.set_property(session, name, value, hasher=installation.hasher, actor="bench")
        users.add_user(session, USER, full_name="Janet Jones")
    path = home / "tokens.txt"
    with path.open("w") as out:
        for _ in range(token_count):
            out.write(tokens.create_token(USER, key=installation.token_key) + "\n")
    return path, installation


def spent_tokens(installation: Installation) -> int:
    from sqlalchemy import func, select

    from printsrv.people.models import SpentLoginToken

    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(SpentLoginToken)) or 0


# --- load -------------------------------------------------------------------------------------


def run_wrk(
    url: str, lua_script: str, *, connections: int, seconds: int, cpus: str | None
) -> tuple[Load, int]:
    """Run wrk with `lua_script` against `url`; (what it measured, responses counted)."""
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lua.write_text(lua_script)
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua)]
    try:
        out = subprocess.run(
            [*prefix, *command, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        lua.unlink()

    completed = re.search(r"^\s+(\d+) requests in", out, re.MULTILINE)
    if completed is None:
        raise RuntimeError(f"wrk printed no request count:\n{out}")
    return parse_wrk(out), int(completed.group(1))


def post_script(body: str, content_type: str) -> str:
    """A wrk script posting one fixed body."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {lua_string(body)}\n"
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
    )


def login_script(token_file: Path) -> str:
    """A wrk script posting the LMS hand-over form with a new token per request."""
    return f"""
local tokens = {{}}
for line in io.lines("{token_file}") do tokens[#tokens + 1] = line end
local sent = 0
request = function()
  sent = sent + 1
  local token = tokens[sent] or "exhausted"
  return wrk.format("POST", "/user", {{["Content-Type"] = "{FORM}"}},
                    "auth_user={USER}&auth_token=" .. token)
end
"""


TITLE = (
    "One-time login tokens on PostgreSQL, wrk -t1, 1 uvicorn worker "
    "(baseline: bare Starlette, same settings, same run; targets, issue 22: createToken "
    ">= 0.3, logins >= 0.15)"
)


def figures(
    *, seconds: int = 8, connections: int = 16, tokens: int = 60_000, database_url: str = PG_URL
) -> list[Row]:
    """createToken and token logins next to the bare app; checks every login spent one token."""
    if not shutil.which("wrk"):
        raise RuntimeError("bench.xmlrpc_tokens needs wrk (apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="bench-tokens-"))
    server_cpus, load_cpus = "0", "1"  # one worker on core 0, wrk on core 1
    try:
        with private_schema(database_url, "tokens") as url:
            token_file, installation = prepare(home, url, tokens)
            load = {"connections": connections, "seconds": seconds, "cpus": load_cpus}
            create = post_script(CREATE_BODY, "text/xml")
            form = post_script(f"auth_user={USER}&auth_token={'A' * 56}", FORM)
            with bare_server(server_cpus) as bare:
                base_create, _ = run_wrk(f"http://127.0.0.1:{bare.port}/xmlrpc/v1", create, **load)
                base_login, _ = run_wrk(f"http://127.0.0.1:{bare.port}/user", form, **load)
            with printsrv_server(home, url, cpus=server_cpus) as server:
                created, _ = run_wrk(f"http://127.0.0.1:{server.port}/xmlrpc/v1", create, **load)
                logins, completed = run_wrk(
                    f"http://127.0.0.1:{server.port}/user", login_script(token_file), **load
                )
            spent = spent_tokens(installation)
            installation.db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    # wrk stops counting at the deadline; the requests then in flight still spent a token.
    spent_right = completed - logins.errors <= spent <= completed + connections
    return [
        *load_rows(
            f"createToken, {connections} connections", created, base_create, target=">= 0.3"
        ),
        *load_rows(
            f"token logins, {connections} connections", logins, base_login, target=">= 0.15"
        ),
        (
            "logins answered / tokens spent",
            f"{completed:,} / {spent:,}",
            f"{tokens:,} available",
            "OK" if spent_right else "MISMATCH",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=60_000, help="tokens for the login phase")
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    rows = figures(
        seconds=args.seconds,
        connections=args.connections,
        tokens=args.tokens,
        database_url=args.database_url,
    )
    print_table(TITLE, rows)
    if rows[-1][3] != "OK":
        sys.exit("spent tokens do not match successful logins")


if __name__ == "__main__":
    main()
