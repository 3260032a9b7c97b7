"""Helpers for tests: a live server in a thread, a server process, polling."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import uvicorn

from printsrv.app import create_app
from printsrv.operations.installation import Installation

TEST_SECRET = "test-installation-secret-0123456789abcdef"
T = TypeVar("T")

INSTALLED_BY = "scripts/install --test installs it (scripts/system-packages.txt)"


def require_programs(*programs: str) -> None:
    """Fail the calling test, in words, when a real part it drives is not installed.

    A test never skips because a real part is missing: a run that skipped its LDAP, browser or
    conversion tests is not green. ``programs`` are names on PATH or absolute paths.
    """
    missing = [
        name
        for name in programs
        if not (Path(name).is_file() if name.startswith("/") else shutil.which(name))
    ]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: {INSTALLED_BY}", pytrace=False)


class LiveServer:
    """A real uvicorn server on a loopback socket, in a thread of the test process."""

    def __init__(self, installation: Installation, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, 0))
        self.port = self.socket.getsockname()[1]
        self.host = host
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"http://{netloc}:{self.port}"
        config = uvicorn.Config(
            create_app(installation),
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


def wait_until(condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class HeldConnections:
    """The pool connections that threads named `prefix...` hold now, counted from the pool's
    own checkout and checkin events.

    Exact whatever else holds connections meanwhile: a running server's background polls
    (config, monitor, tracker, jobs) take one for a moment at any time, so a reading of
    `pool.checkedout()` says little about one request's connection. Call `close()` (or use
    `with`) to stop counting.
    """

    def __init__(self, engine: object, prefix: str) -> None:
        from sqlalchemy import event

        self._pool = engine.pool  # type: ignore[attr-defined]
        self._prefix = prefix
        self._held: set[int] = set()
        self._lock = threading.Lock()
        event.listen(self._pool, "checkout", self._checkout)
        event.listen(self._pool, "checkin", self._checkin)

    def _checkout(self, _dbapi: object, record: object, _proxy: object) -> None:
        if threading.current_thread().name.startswith(self._prefix):
            with self._lock:
                self._held.add(id(record))

    def _checkin(self, _dbapi: object, record: object) -> None:
        with self._lock:
            self._held.discard(id(record))

    def __call__(self) -> int:
        with self._lock:
            return len(self._held)

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self._pool, "checkout", self._checkout)
        event.remove(self._pool, "checkin", self._checkin)

    def __enter__(self) -> HeldConnections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Overlap:
    """Counts the calls inside `during()` at once; `peak` is the most it saw."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def during(self) -> Iterator[None]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """`python -m printsrv serve` as a separate process, the way an operator runs it."""

    def __init__(self, env: dict[str, str], *args: str, port: int | None = None, log: Path) -> None:
        self.port = port or free_port()
        self.log_path = log
        self.args = [sys.executable, "-m", "printsrv", "serve", "--port", str(self.port), *args]
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str | None = None, **client_options: object) -> ServeProcess:
        import httpx

        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        url = ready_url or f"http://127.0.0.1:{self.port}/restful/v1/system/version"

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                return httpx.get(url, timeout=1, **client_options).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(answers, timeout=30, interval=0.1)
        except BaseException:
            # Never leave a half-started server (and its log file) behind a failed test.
            self.stop()
            raise
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


def set_config(installation: Installation, values: dict[str, str]) -> None:
    """Set config properties through the service, as the CLI does."""
    from printsrv.platform import properties as config

    with installation.db.transaction() as session:
        for name, value in values.items():
            config.set_property(session, name, value, hasher=installation.hasher, actor="test")


class TcpProxy:
    """A loopback TCP forwarder whose plug a test can pull: the database 'goes down'.

    Stopping closes the listener and every open connection, as a crashed or unreachable
    database server would; starting again listens on the same port.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, and
            # the kernel would keep accepting connections on the still-referenced socket.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._connections.clear()


JSONRPC_KEY = "7961b5ec-bee4-11e7-8731-406186940c49"


def open_jsonrpc(
    installation: Installation, *, admin: bool = False, allowed: str = "127.0.0.1/32, ::1"
) -> None:
    """Let loopback callers with JSONRPC_KEY in (and the provisioning methods, if asked)."""
    set_config(
        installation,
        {
            "api.jsonrpc.secret-key": JSONRPC_KEY,
            "api.jsonrpc.ext.ip-addresses-allowed": allowed,
            "api.jsonrpc.admin.enable": "Y" if admin else "N",
            "api.restful.auth.username": "admin",
            "api.restful.auth.password": "admin-password",
        },
    )


def jsonrpc_call(
    server: LiveServer,
    body: object,
    *,
    key: str = JSONRPC_KEY,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a JSON-RPC body (a str/bytes is sent as is, anything else as JSON)."""
    import json

    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return httpx.post(
        f"{server.url}/jsonrpc/v1",
        content=content,
        headers={"X-Auth-Key": key, "Content-Type": "application/json", **(headers or {})},
    )


def rpc(server: LiveServer, method: str, params: object = None, *, id: object = 1) -> dict:
    """Call one method and return the decoded answer object."""
    body: dict[str, object] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    response = jsonrpc_call(server, body)
    assert response.status_code == 200, response.text
    return response.json()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def empty_postgresql(url: str) -> None:
    """Empty every table of the current schema (the migrations stay applied)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        tables = connection.scalars(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version'"
            )
        ).all()
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def every_service_error_class() -> list[type]:
    """Every PrintsrvError subclass in printsrv, its modules all imported first."""
    import importlib
    import pkgutil

    import printsrv
    from printsrv.errors import PrintsrvError

    for module in pkgutil.walk_packages(printsrv.__path__, "printsrv."):
        if ".migrations." not in module.name and module.name != "printsrv.__main__":
            importlib.import_module(module.name)

    def below(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in (direct, *below(direct))}

    return sorted(below(PrintsrvError), key=lambda c: f"{c.__module__}.{c.__qualname__}")
