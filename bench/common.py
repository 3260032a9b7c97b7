"""Shared pieces of the benchmarks: servers as separate processes, wrk as the load, a table.

Every figure is printed next to a baseline measured in the same run, on the same machine,
with the same uvicorn settings; the ratio is what to compare across runs. Load stays on
loopback and every run is bounded in time.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get(
    "PRINTSRV_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = "bench-installation-secret-0123456789abcdef"

# One line of a figures table: (figure, value, baseline measured in the same run, ratio).
Row = tuple[str, str, str, str]


@contextmanager
def private_schema(url: str, label: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL database at `url`, dropped afterwards.

    Yields a URL whose connections use it, so a benchmark never touches the tables of
    the tests or of another benchmark. A SQLite URL is yielded as it is.
    """
    if not url.startswith("postgresql"):
        yield url
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class Server:
    """A server process (printsrv or a baseline app) for the length of a `with` block."""

    def __init__(
        self, args: list[str], env: dict[str, str], port: int, probe: str, cpus: str | None = None
    ) -> None:
        prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
        self.args = prefix + args
        self.env = {**os.environ, **env}
        self.port = port
        self.probe = probe
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        try:
            wait_for(f"http://127.0.0.1:{self.port}{self.probe}", self.process)
        except RuntimeError:
            self.log.seek(0)
            sys.stderr.write(self.log.read().decode(errors="replace")[-3000:])
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def printsrv_server(
    home: Path, database_url: str, *, workers: int = 1, cpus: str | None = None
) -> Server:
    port = free_port()
    # The baseline logs no requests either: the comparison is about the request path.
    args = [
        sys.executable,
        "-m",
        "printsrv",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    env = {
        "PRINTSRV_HOME": str(home),
        "PRINTSRV_DATABASE_URL": database_url,
        "PRINTSRV_SECRET_KEY": SECRET,
    }
    return Server(args, env, port, "/restful/v1/system/version", cpus)


def bare_server(
    *, workers: int = 1, cpus: str | None = None, env: dict[str, str] | None = None
) -> Server:
    """The baseline: a bare Starlette app (bench/bare_app.py) under the same uvicorn settings."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-proxy-headers",
        "--no-server-header",
        "--log-level",
        "warning",
    ]
    return Server(args, env or {}, port, "/ping", cpus)


T = TypeVar("T")


@dataclass(frozen=True)
class Load:
    """What wrk measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    connections: int = 64,
    seconds: int = 8,
    cpus: str | None = None,
    warmup: int = 1,
) -> Load:
    """Send one fixed request to `url` with wrk for `seconds` at `connections` connections.

    A `warmup` run of that many seconds goes first and is not measured: a server that
    has just started is still filling its caches and starting its background tasks, which
    in a run of a few seconds decides the p99.
    """
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in (headers or {}).items()]
    lua.write_text("\n".join(lines) + "\n")
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    try:
        for length in ([warmup] if warmup else []) + [seconds]:
            command = ["wrk", "-t1", f"-c{connections}", f"-d{length}s", "--latency", "-s"]
            out = subprocess.run(
                [*prefix, *command, str(lua), url],
                capture_output=True,
                text=True,
                check=True,
                timeout=length + 60,
            ).stdout
    finally:
        lua.unlink()
    return parse_wrk(out)


def parse_wrk(out: str) -> Load:
    """What `wrk --latency` printed, as a Load; errors count non-2xx answers and socket errors."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: the Stdev column ("65.50%") must not be taken for a percentile line.
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Load(rps, p50, p99, errors)


def wrk_post(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    connections: int = 64,
    seconds: int = 8,
    cpus: str | None = None,
) -> Load:
    """POST `body` to `url` with wrk for `seconds` at `connections` connections."""
    return wrk(
        url,
        method="POST",
        body=body,
        headers=headers,
        connections=connections,
        seconds=seconds,
        cpus=cpus,
    )


def lua_string(text: str) -> str:
    """`text` as a double-quoted Lua string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def combine(loads: list[Load]) -> Load:
    """Several runs of one load as one figure: the best rate, the median p50 and p99.

    Noise on a shared machine only ever slows a run down, so the best rate is the closest
    to what the server can do; the latencies keep the middle run's, not the luckiest.
    """
    return Load(
        requests_per_second=max(load.requests_per_second for load in loads),
        p50_ms=statistics.median(load.p50_ms for load in loads),
        p99_ms=statistics.median(load.p99_ms for load in loads),
        errors=sum(load.errors for load in loads),
    )


def take_turns(
    ours: Callable[[], T], base: Callable[[], T], *, rounds: int
) -> tuple[list[T], list[T]]:
    """Run the baseline and ours in turn `rounds` times; every run of each side.

    Taking turns spreads a slow spell of the machine over both sides instead of landing
    on whichever happened to run during it.
    """
    ours_runs: list[T] = []
    base_runs: list[T] = []
    for _ in range(rounds):
        base_runs.append(base())
        ours_runs.append(ours())
    return ours_runs, base_runs


def alternate(
    ours: Callable[[], Load], base: Callable[[], Load], *, rounds: int
) -> tuple[Load, Load]:
    """`take_turns` for wrk loads, each side `combine`d into one figure."""
    ours_runs, base_runs = take_turns(ours, base, rounds=rounds)
    return combine(ours_runs), combine(base_runs)


def load_rows(name: str, ours: Load, base: Load, *, target: str = "") -> list[Row]:
    """Requests per second, p50 and p99 of `ours` next to the baseline `base`."""
    label = f" ({target})" if target else ""
    return [
        (
            f"{name} req/s{label}",
            f"{ours.requests_per_second:,.0f}",
            f"{base.requests_per_second:,.0f}",
            f"{ours.requests_per_second / base.requests_per_second:.2f}",
        ),
        (
            f"{name} p50 / p99 ms",
            f"{ours.p50_ms:.1f} / {ours.p99_ms:.1f}",
            f"{base.p50_ms:.1f} / {base.p99_ms:.1f}",
            f"p99 {ours.p99_ms / base.p99_ms:.2f}",
        ),
        (f"{name} errors", str(ours.errors), str(base.errors), "-"),
    ]


def print_table(title: str, rows: list[Row]) -> None:
    """Rows of (figure, value, baseline, ratio)."""
    header = ("figure", "value", "baseline (same run)", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
