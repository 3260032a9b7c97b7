"""A soak with faults: two printsrv machines on one PostgreSQL under a mixed load, with the
database restarted, a machine killed (-9) and cupsd stopped on the way; then the invariants.

    python -m bench.soak [--minutes 10] [--threads 6] [--keep]

Everything it uses is its own, started for the run and removed afterwards: a private
PostgreSQL cluster (initdb + pg_ctl on a free port, never the machine's shared server), a
private cupsd (tests/cupsd.py) with one capture printer that keeps every job it prints as
a file, and two ``printsrv serve`` processes ("a" and "b", each with a data directory of its
own, one secret). Client threads send, to either machine at random:

- ``transfer``: a user's REST transfer to another user (Idempotency-Key, retried after a
  connection error or a 5xx with the same key);
- ``adjust``: the admin's REST ``adjust=true`` of a user's balance (Idempotency-Key, retried);
- ``rpc-balance``: JSON-RPC ``setUserProperties`` setting one user's balance (a user no other
  operation touches, so each set is one ADJUST row of the difference);
- ``upload``: a one-page PDF (its bytes and name unique) printed through a routed queue to
  the capture printer (Idempotency-Key, retried);
- ``report-csv`` / ``report-pdf``: the admin's transaction report of one user;
- ``token``: XML-RPC ``createToken`` then the web app's token login (``POST /user``);
- ``status``: JSON-RPC ``systemStatus``;
- ``log-read``: after each accepted upload, the admin's newest page of the document log on
  the other machine, until it shows the upload.

The faults, at fixed fractions of the run, each on a thread of its own: PostgreSQL restarted
(``pg_ctl restart -m fast``) at 25 %, machine "b" killed with SIGKILL at 40 % and started
again 5 s later, cupsd stopped at 60 % for 30 s and started again (in a run under five
minutes, a twentieth of the run and a twelfth). At 85 % (once "b" is back) the transfer
maximum is lowered as ``printsrv config set`` does it, and each machine is sent a transfer
above it until it refuses it. The load runs until every fault is over; then the soak waits
for every open print job to finish (at most 180 s), stops both machines and checks:

1. money created or lost: ``financial verify`` (every balance equals its ledger), the sum of
   the balances against the sum of the ledger, and against what the requests explain (the
   set-up's top-ups, the adjustments and balance sets the clients sent, the charges of
   the prints that completed); every adjustment and transfer the server confirmed is in the
   ledger exactly once, a refused one not at all, one whose answer was lost at most once;
2. documents accepted but neither printed nor refunded: every print job is final, a
   completed one charged and not refunded, any other one refunded; every upload answered
   200 has its job;
3. jobs printed twice: every document appears at most once among the capture printer's
   outputs, and a job printsrv calls completed has its output;
4. answers: no 5xx other than 503 (a fault is refused with 503 and Retry-After, or the
   connection fails; a 500 is a crash); the other machine's page of the document log shows
   an accepted upload within 2 s (its cache heard of it); a config change (``printsrv config
   set``'s service, after the faults) is in force on both machines within 1 s;
5. orphan files under the machines' data directories: stored PDFs no kept document names,
   work directories left in ``tmp/``, any other file. Those the kill -9 left (written before
   it) are counted apart: the product's own sweep must remove them (it is run with its clock
   moved past ``ORPHAN_GRACE``), and there must be no other.

It prints the faults as they happened, the requests of each operation by result class with
their p50 and p99, the exceptions in each machine's log, and the invariants. Exit status 1
when an invariant fails, 0 otherwise. ``--minutes 0.4`` is the small mode
tests/unit/test_bench.py runs (the faults compressed into 24 s). docs/soak.md has
the last results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xmlrpc.client
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import Row, create_engine, func, select, text
from sqlalchemy.orm import Session, aliased

from bench.common import ROOT, SECRET, free_port, wait_for

sys.path.insert(0, str(ROOT / "tests"))

from cupsd import PrivateCups

ADMIN = ("admin", "soak-admin-password-0123")
JSONRPC_KEY = "soak-jsonrpc-key-0123456789"
TTP_KEY = "soak-lms-api-key-0123456789"
USERS = 12
TOP_UP = Decimal("1000.00")
GROUP = "soak-staff"
RPC_USER = "soak-rpc"  # the balance JSON-RPC sets; no other operation touches it
QUEUE = "soak"
PRINTER = "soakcap"
PER_SIDE = Decimal("0.10")
# (operation, weight): money and the cheap reads most, uploads and reports less.
MIX = [
    ("transfer", 25),
    ("adjust", 12),
    ("rpc-balance", 5),
    ("upload", 12),
    ("report-csv", 4),
    ("report-pdf", 2),
    ("token", 12),
    ("status", 28),
]
OPERATIONS = [name for name, _ in MIX] + ["log-read"]  # log-read follows each upload
# The other machine's document-log page must show an accepted upload within this long (the
# promise is milliseconds, through NOTIFY; the margin is for a machine loaded by others).
STALE_AFTER = 2.0
RESULT_CLASSES = ("2xx", "4xx", "503", "5xx", "conn-error")


# --- the private parts ------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the postgres user when we are root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found (Debian package postgresql)")
    return path


class PrivatePostgres:
    """A PostgreSQL cluster of the soak's own, in a temporary directory on a free port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "pgdata"
        self.log = base / "postgres.log"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(
            _as_postgres(list(args)), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}\n{tail}")

    def start(self) -> PrivatePostgres:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._ctl("start")
        return self

    def _ctl(self, action: str) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off -c synchronous_commit=off"
        )
        self._run(
            _pg_bin("pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "-o",
            options,
        )

    def restart(self) -> None:
        """A fast restart: every connection is cut, the cluster comes back on the same port."""
        self._ctl("restart")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(_pg_bin("pg_ctl"), "stop", "-D", str(self.data), "-w", "-m", "fast")


class Machine:
    """One ``printsrv serve`` process with a data directory of its own, on a fixed port; what
    it logs goes to ``log`` (appended across restarts)."""

    def __init__(self, name: str, home: Path, database_url: str, log: Path) -> None:
        self.name = name
        self.home = home
        self.database_url = database_url
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, "-m", "printsrv", "serve", "--port", str(self.port),
                "--workers", "1", "--no-access-log"]  # fmt: skip
        env = {
            **os.environ,
            "PRINTSRV_HOME": str(self.home),
            "PRINTSRV_DATABASE_URL": self.database_url,
            "PRINTSRV_SECRET_KEY": SECRET,
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(f"{self.url}/restful/v1/system/version", self.process)
        except RuntimeError:
            sys.stderr.write(self.log.read_text(errors="replace")[-3000:])
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL: no shutdown, no clean-up, leases and files left as they are."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def errors(self) -> list[str]:
        """The first line of every traceback in the log: the exception it ended with."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        found = []
        for index, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next(
                    (
                        j
                        for j in range(index + 1, len(lines))
                        if not lines[j].startswith((" ", "Traceback", "During", "The above"))
                    ),
                    len(lines) - 1,
                )
                found.append(lines[end])
        return found


# --- set-up -----------------------------------------------------------------------------------


def one_page_pdf(text: str) -> bytes:
    """A small one-page PDF with `text` on it (so every upload's bytes differ)."""
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def prepare(home: Path, database_url: str, cups: PrivateCups) -> dict[str, str]:
    """Migrate, configure every API the load uses, add the printer, queue, users and group;
    return each user's UUID."""
    from printsrv.accounts import service as accounting
    from printsrv.migrations import upgrade_schema
    from printsrv.operations.installation import open_installation
    from printsrv.people import users
    from printsrv.platform import properties as config
    from printsrv.platform.environment import Environment
    from printsrv.printing import printers, queues
    from printsrv.printing.context import PrintContext
    from printsrv.printing.tracker import sync_from_cups

    installation = open_installation(
        Environment(home=home, database_url=database_url, secret_key=SECRET)
    )
    upgrade_schema(installation.db)
    settings = {
        "cups.server": cups.server,
        "api.restful.auth.username": ADMIN[0],
        "api.restful.auth.password": ADMIN[1],
        "api.jsonrpc.secret-key": JSONRPC_KEY,
        "api.jsonrpc.ext.ip-addresses-allowed": "127.0.0.1/32, ::1",
        "api.jsonrpc.admin.enable": "Y",
        "web-login.ttp.enable": "Y",
        "web-login.ttp.apikey": TTP_KEY,
        "web-login.ttp.token.expiry-msecs": "600000",
        "financial.user.transfers.enable": "Y",
    }
    with installation.db.transaction() as session:
        for name, value in settings.items():
            config.set_property(session, name, value, hasher=installation.hasher, actor="soak")
    asyncio.run(sync_from_cups(PrintContext.of(installation)))
    credentials = {}
    with installation.db.transaction() as session:
        prices = {"grayscale": str(PER_SIDE), "color": str(PER_SIDE * 4)}
        model = printers.parse_media_costs({"default": {"one-sided": prices, "two-sided": prices}})
        printers.set_cost(session, PRINTER, model)
        queues.add_queue(session, QUEUE, printer=PRINTER)
        users.add_group(session, GROUP)
        for index in range(USERS):
            name = f"soak{index:02d}"
            users.add_user(session, name, full_name=f"Soak User {index}")
            users.add_member(session, GROUP, name)
            credentials[name] = users.issue_uuid(session, name, hasher=installation.hasher)
            accounting.change_balance(
                session,
                account_type="USER",
                name=name,
                amount=TOP_UP,
                adjust=True,
                comment="soak top-up",
                actor=accounting.admin_actor("soak"),
            )
        users.add_user(session, RPC_USER, full_name="Soak JSON-RPC")
    installation.db.dispose()
    return credentials


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Sent:
    """A money request and what became of it: ``confirmed`` (2xx, applied), ``refused`` (a
    definite refusal), or ``unknown`` (no answer, or only 5xx, however often retried)."""

    op: str
    marker: str
    amount: Decimal
    outcome: str


@dataclass
class Record:
    """Everything the clients saw, shared by the load threads (under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    money: list[Sent] = field(default_factory=list)
    uploads: dict[str, int | None] = field(default_factory=dict)  # title -> document id
    surprises: list[str] = field(default_factory=list)
    log_waits: list[float] = field(default_factory=list)  # seconds until the other machine saw it
    stale_pages: list[str] = field(default_factory=list)  # uploads it did not show in time
    surprise_count: int = 0

    def count(self, op: str, result: str, seconds: float | None) -> None:
        with self.lock:
            self.counts[op][result] += 1
            if seconds is not None:
                self.latencies[op].append(seconds)

    def surprise(self, text: str) -> None:
        with self.lock:
            self.surprise_count += 1
            if len(self.surprises) < 50:
                self.surprises.append(text)


def result_class(status: int) -> str:
    if 200 <= status < 300 or status in (302, 303):
        return "2xx"
    if status == 503:
        return "503"
    if status >= 500:
        return "5xx"
    return "4xx"


class Client:
    """One load thread: picks an operation by MIX and a machine at random, until stopped."""

    def __init__(
        self, number: int, machines: list[Machine], credentials: dict[str, str], record: Record
    ) -> None:
        self.number = number
        self.machines = machines
        self.credentials = credentials
        self.names = sorted(credentials)
        self.record = record
        self.random = random.Random(number)
        self.http = httpx.Client(timeout=30)
        self.serial = 0
        self.last_machine = machines[0]  # the machine the last request went to
        self.last_upload: int | None = None  # the last upload this client saw accepted

    def _next(self) -> str:
        self.serial += 1
        return f"{self.number}-{self.serial}"

    def _send(self, op: str, request: Callable[[str], httpx.Response]) -> httpx.Response | None:
        """One request to a random machine, counted; None for a connection error."""
        machine = self.last_machine = self.random.choice(self.machines)
        started = time.perf_counter()
        try:
            response = request(machine.url)
        except httpx.HTTPError:
            self.record.count(op, "conn-error", None)
            return None
        self.record.count(op, result_class(response.status_code), time.perf_counter() - started)
        if response.status_code >= 400 and response.status_code != 503:
            self.record.surprise(f"{op} on {machine.name}: {response.status_code} {response.text}")
        return response

    def _retried(
        self, op: str, request: Callable[[str], httpx.Response], attempts: int = 4
    ) -> tuple[httpx.Response | None, bool]:
        """Send with the same Idempotency-Key until an answer that is not a 5xx (or give up);
        return the last response and whether any attempt went unanswered or 5xx."""
        doubtful = False
        response = None
        for attempt in range(attempts):
            response = self._send(op, request)
            if response is not None and response.status_code < 500:
                return response, doubtful
            doubtful = True
            time.sleep(0.5 * (attempt + 1))
        return response, doubtful

    def run(self, stop: threading.Event) -> None:
        ops, weights = zip(*MIX, strict=True)
        handlers = {
            "transfer": self.transfer,
            "adjust": self.adjust,
            "rpc-balance": self.balance_set,
            "upload": self.upload,
            "report-csv": lambda: self.report("CSV"),
            "report-pdf": lambda: self.report("PDF"),
            "token": self.token,
            "status": self.status,
        }
        while not stop.is_set():
            op = self.random.choices(ops, weights)[0]
            try:
                handlers[op]()
            except Exception as exc:  # a client bug must not end the soak silently
                self.record.surprise(f"{op}: client error {exc!r}")
                time.sleep(0.1)
        self.http.close()

    def _user_auth(self, name: str) -> tuple[str, str]:
        return (name, self.credentials[name])

    def _money(
        self, op: str, marker: str, amount: Decimal, response: httpx.Response | None, doubtful: bool
    ) -> None:
        if response is not None and response.status_code == 200:
            body = response.json()
            outcome = "confirmed" if body.get("succes") else "refused"
        elif response is not None and response.status_code < 500:
            outcome = "refused"
        else:
            outcome = "unknown"
        if outcome == "refused" and doubtful:
            # A 4xx after a lost answer may be the key's stored answer or a real refusal.
            outcome = "unknown"
        with self.record.lock:
            self.record.money.append(Sent(op, marker, amount, outcome))

    def transfer(self) -> None:
        sender, recipient = self.random.sample(self.names, 2)
        amount = Decimal(self.random.randint(1, 50)) / 100
        marker = f"soak-t-{self._next()}"
        key = uuid.uuid4().hex

        def request(url: str) -> httpx.Response:
            return self.http.post(
                f"{url}/restful/v1/financial/transfer",
                params={"name": recipient, "amount": str(amount), "comment": marker},
                auth=self._user_auth(sender),
                headers={"Idempotency-Key": key},
            )

        response, doubtful = self._retried("transfer", request)
        self._money("transfer", marker, amount, response, doubtful)

    def adjust(self) -> None:
        name = self.random.choice(self.names)
        amount = Decimal(self.random.randint(-200, 300)) / 100 or Decimal("0.01")
        marker = f"soak-a-{self._next()}"
        key = uuid.uuid4().hex

        def request(url: str) -> httpx.Response:
            return self.http.post(
                f"{url}/restful/v1/financial/account/balance",
                params={
                    "type": "USER",
                    "name": name,
                    "amount": str(amount),
                    "adjust": "true",
                    "details": marker,
                },
                auth=ADMIN,
                headers={"Idempotency-Key": key},
            )

        response, doubtful = self._retried("adjust", request)
        self._money("adjust", marker, amount, response, doubtful)

    def balance_set(self) -> None:
        """JSON-RPC setUserProperties: set RPC_USER's balance (one ADJUST row, the difference)."""
        amount = Decimal(self.random.randint(0, 10000)) / 100
        marker = f"soak-s-{self._next()}"
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "setUserProperties",
            "params": {
                "user": {
                    "userName": RPC_USER,
                    "accounting": {"balance": str(amount), "comment": marker},
                }
            },
        }
        response = self._send(
            "rpc-balance",
            lambda url: self.http.post(
                f"{url}/jsonrpc/v1", json=body, headers={"X-Auth-Key": JSONRPC_KEY}
            ),
        )
        if response is None or response.status_code >= 500:
            outcome = "unknown"
        elif response.status_code == 200 and "error" not in response.json():
            outcome = "confirmed"
        else:
            outcome = "refused"
        with self.record.lock:
            self.record.money.append(Sent("rpc-balance", marker, amount, outcome))

    def upload(self) -> None:
        name = self.random.choice(self.names)
        title = f"soak-{self._next()}.pdf"
        pdf = one_page_pdf(f"printsrv soak {title} {uuid.uuid4().hex}")
        key = uuid.uuid4().hex

        def request(url: str) -> httpx.Response:
            return self.http.post(
                f"{url}/restful/v1/documents/print",
                auth=self._user_auth(name),
                files={"file": (title, pdf, "application/pdf")},
                data={"queue": QUEUE},
                headers={"Idempotency-Key": key},
            )

        response, _ = self._retried("upload", request)
        document = None
        if response is not None and response.status_code == 200:
            answer = response.json()
            document = int(answer["id"])
            if answer["status"] not in ("printing", "failed"):
                self.record.surprise(f"upload {title}: status {answer['status']}")
            self.log_read(document, answered_by=self.last_machine)
        with self.record.lock:
            self.record.uploads[title] = document

    def log_read(self, document: int, answered_by: Machine) -> None:
        """Read the newest page of the document log on the other machine until it shows the
        upload just accepted (its cache must have heard of it): how long that took."""
        other = next(m for m in self.machines if m is not answered_by)
        accepted = time.monotonic()
        while True:
            started = time.perf_counter()
            try:
                page = self.http.get(
                    f"{other.url}/restful/v1/documents",
                    params={"type": "in", "limit": "20", "page": "0"},
                    auth=ADMIN,
                )
            except httpx.HTTPError:
                self.record.count("log-read", "conn-error", None)
                return
            self.record.count(
                "log-read", result_class(page.status_code), time.perf_counter() - started
            )
            if page.status_code != 200:
                return  # a fault; nothing to learn about the cache
            waited = time.monotonic() - accepted
            if any(entry["id"] == document for entry in page.json()):
                with self.record.lock:
                    self.record.log_waits.append(waited)
                return
            if waited > STALE_AFTER:
                with self.record.lock:
                    self.record.stale_pages.append(f"document {document} on {other.name}")
                return
            time.sleep(0.05)

    def report(self, media: str) -> None:
        body = {
            "select": {"account_type": "USER", "account_name": self.random.choice(self.names)},
            "sort": {"field": "TRX_DATE", "ascending": False},
            "media_type": media,
        }
        response = self._send(
            f"report-{media.lower()}",
            lambda url: self.http.post(
                f"{url}/restful/v1/reports/accounttrx", json=body, auth=ADMIN
            ),
        )
        ok = response is not None and response.status_code == 200
        if ok and media == "PDF" and not response.content.startswith(b"%PDF-"):  # type: ignore[union-attr]
            self.record.surprise("report-pdf: 200 without a PDF")

    def token(self) -> None:
        name = self.random.choice(self.names)
        body = xmlrpc.client.dumps((TTP_KEY, name), "onetime-auth.createToken")
        machine = self.random.choice(self.machines)
        started = time.perf_counter()
        try:
            created = self.http.post(
                f"{machine.url}/xmlrpc/v1", content=body, headers={"Content-Type": "text/xml"}
            )
            try:
                (token,), _ = xmlrpc.client.loads(created.content)
            except xmlrpc.client.Fault as fault:
                # 11: the database is unreachable, 13: maintenance; both say Retry-After.
                unavailable = fault.faultCode in (11, 13)
                seconds = time.perf_counter() - started
                self.record.count("token", "503" if unavailable else "4xx", seconds)
                if not unavailable:
                    self.record.surprise(f"createToken on {machine.name}: {fault}")
                return
            other = self.random.choice(self.machines)  # any machine takes any machine's token
            login = self.http.post(
                f"{other.url}/user", data={"auth_user": name, "auth_token": token}
            )
        except httpx.HTTPError:
            self.record.count("token", "conn-error", None)
            return
        self.record.count("token", result_class(login.status_code), time.perf_counter() - started)
        if login.status_code not in (302, 303, 503):
            self.record.surprise(f"token login on {other.name}: {login.status_code}")

    def status(self) -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "systemStatus"}
        self._send(
            "status",
            lambda url: self.http.post(
                f"{url}/jsonrpc/v1", json=body, headers={"X-Auth-Key": JSONRPC_KEY}
            ),
        )


# --- faults -----------------------------------------------------------------------------------


@dataclass
class Faults:
    """When each fault happened, for the report (seconds since the load started)."""

    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    victim: str = ""  # the machine killed
    config_lag: dict[str, float] = field(default_factory=dict)  # machine -> s until in force
    killed_at: float = 0.0  # wall time of the kill -9


def fault_threads(
    seconds: float,
    started: float,
    stop: threading.Event,
    pg: PrivatePostgres,
    machines: list[Machine],
    cups: PrivateCups,
    faults: Faults,
    probe: Callable[[], None],
) -> list[threading.Thread]:
    """The three faults, each on a thread of its own at its moment of the run (so a slow
    restart of one never delays the next), and the config probe after them."""
    victim = machines[1]
    victim_back = threading.Event()
    cups_down = 30.0 if seconds >= 300 else max(3.0, seconds / 20)
    dead_for = min(5.0, seconds / 12)

    def note(text: str) -> None:
        with faults.lock:
            faults.log.append(f"{time.monotonic() - started:6.1f} s  {text}")

    def restart_postgres() -> None:
        note("PostgreSQL: restart (pg_ctl restart -m fast)")
        pg.restart()
        note("PostgreSQL: back")

    def kill_machine() -> None:
        note(f"machine {victim.name}: kill -9")
        faults.victim, faults.killed_at = victim.name, time.time()
        try:
            victim.kill()
            time.sleep(dead_for)
            victim.start()
            note(f"machine {victim.name}: started again, answering")
        finally:
            victim_back.set()

    def stop_cupsd() -> None:
        note(f"cupsd: stopped for {cups_down:.0f} s")
        cups.stop()
        time.sleep(cups_down)
        cups.start()
        note("cupsd: started again")

    def at(fraction: float, fault: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            if not stop.wait(max(0.0, started + seconds * fraction - time.monotonic())):
                fault()

        return threading.Thread(target=run, name=fault.__name__)

    def change_config() -> None:
        victim_back.wait()  # the promise is for running machines: not while one is down
        note("config: transfer maximum lowered (config.set_property, as printsrv config set)")
        probe()
        lags = ", ".join(f"{m} {lag * 1000:.0f} ms" for m, lag in faults.config_lag.items())
        note(f"config: in force on {lags}")

    return [
        at(0.25, restart_postgres),
        at(0.4, kill_machine),
        at(0.6, stop_cupsd),
        at(0.85, change_config),
    ]


# How long a config change may take to be in force on every machine (README: "within a
# second, under load too").
CONFIG_WITHIN = 1.0
PROBE_AMOUNT = Decimal("0.51")  # above the maximum the probe sets, above no transfer of the load


def config_probe(
    machines: list[Machine], credentials: dict[str, str], record: Record, faults: Faults
) -> None:
    """Lower the transfer maximum as ``printsrv config set`` does (below PROBE_AMOUNT, above
    every transfer of the load), then send each machine a transfer of PROBE_AMOUNT until it
    refuses it; note how long each machine took. Transfers that went through are recorded
    like the load's, so the money checks count them."""
    from printsrv.operations.installation import open_installation
    from printsrv.platform import properties as config
    from printsrv.platform.environment import Environment

    sender, recipient = sorted(credentials)[:2]
    installation = open_installation(
        Environment(home=machines[0].home, database_url=machines[0].database_url, secret_key=SECRET)
    )
    try:
        # What `printsrv config set` does, without a second Python starting up under load.
        with installation.db.transaction() as session:
            config.set_property(
                session, "financial.user.transfers.amount-max", "0.50",
                hasher=installation.hasher, actor="soak",
            )  # fmt: skip
    finally:
        installation.db.dispose()
    changed = time.monotonic()
    waiting = {m.name: m for m in machines}
    with httpx.Client(timeout=30) as http:
        while waiting:
            for name, machine in list(waiting.items()):
                marker = f"soak-t-probe-{uuid.uuid4().hex[:8]}"
                try:
                    answer = http.post(
                        f"{machine.url}/restful/v1/financial/transfer",
                        params={"name": recipient, "amount": str(PROBE_AMOUNT), "comment": marker},
                        auth=(sender, credentials[sender]),
                    )
                except httpx.HTTPError:
                    record.money.append(Sent("transfer", marker, PROBE_AMOUNT, "unknown"))
                    continue
                refused = answer.status_code == 400 and "maximum" in answer.text
                if answer.status_code == 200 and answer.json().get("succes"):
                    outcome = "confirmed"
                elif answer.status_code < 500:
                    outcome = "refused"
                else:
                    outcome = "unknown"
                with record.lock:
                    record.money.append(Sent("transfer", marker, PROBE_AMOUNT, outcome))
                if refused:
                    faults.config_lag[name] = time.monotonic() - changed
                    del waiting[name]
            if time.monotonic() - changed > 30:
                for name in waiting:
                    faults.config_lag[name] = float("inf")
                return
            time.sleep(0.02)


# --- the invariants ---------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    value: int | Decimal
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.value == 0


def wait_for_open_jobs(database_url: str, timeout: float) -> int:
    """Wait until no print job is queued or submitted; return how many still are."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                open_jobs = connection.scalar(
                    text("SELECT count(*) FROM print_job WHERE state IN ('queued', 'submitted')")
                )
            if not open_jobs or time.monotonic() > deadline:
                return int(open_jobs or 0)
            time.sleep(1)
    finally:
        engine.dispose()


def capture_outputs(cups: PrivateCups) -> dict[int, str]:
    """CUPS job id -> title, for every job the capture printer printed."""
    outputs = {}
    for env in cups.capture_dir(PRINTER).glob("job-*.env"):
        fields = dict(line.partition("=")[::2] for line in env.read_text().splitlines())
        outputs[int(fields["JOBID"])] = fields["TITLE"]
    return outputs


def money_checks(session: Session, record: Record, *, top_ups: Decimal) -> list[Check]:
    """The ledger against itself (``financial verify``, balances against rows) and against
    the requests the clients sent; ``top_ups`` is what the set-up put in ("soak top-up")."""
    from financial.schema import Account, AccountTrx
    from printsrv.accounts import service as accounting
    from printsrv.printing.models import PrintJob

    problems = accounting.verify_ledger(session)
    # Through the mapped columns, so amounts come back as Decimal on SQLite too.
    balances = session.scalar(select(func.sum(Account.balance))) or Decimal(0)
    reversed_row = aliased(AccountTrx)
    rows = session.execute(
        select(
            AccountTrx.trx_type,
            AccountTrx.comment,
            AccountTrx.amount,
            AccountTrx.balance_after,
            reversed_row.trx_type.label("reversed"),
        ).outerjoin(reversed_row, reversed_row.id == AccountTrx.reversal_of_id)
    ).all()
    ledger = sum((Decimal(row.amount) for row in rows), Decimal(0))
    by_marker: dict[str, list[Row]] = defaultdict(list)
    unexplained = []
    prints = Decimal(0)
    for row in rows:
        if row.trx_type == "PRINT_OUT" and row.reversed in (None, "PRINT_OUT"):
            prints += Decimal(row.amount)  # a charge, or its refund
        elif row.comment == "soak top-up" and row.trx_type == "ADJUST":
            pass
        elif row.comment.startswith(("soak-a-", "soak-s-", "soak-t-")):
            by_marker[row.comment].append(row)
        else:
            unexplained.append(f"{row.trx_type} {row.amount} {row.comment[:40]!r}")
    completed_cost = session.scalar(
        select(func.sum(PrintJob.cost)).where(PrintJob.state == "completed")
    ) or Decimal(0)
    expected_rows = {"adjust": 1, "transfer": 2, "rpc-balance": 1}
    wrong = []
    adjusted = Decimal(0)  # what the adjustments that landed added, as the clients sent them
    sets = Decimal(0)  # what the balance sets that landed added (the difference, the ledger's)
    transfers = Decimal(0)
    for sent in record.money:
        found = by_marker.pop(sent.marker, [])
        want = expected_rows[sent.op]
        allowed = {
            "confirmed": {0, 1} if sent.op == "rpc-balance" else {want},
            "refused": {0},
            "unknown": {0, want},
        }[sent.outcome]
        if len(found) not in allowed:
            wrong.append(f"{sent.op} {sent.marker} {sent.outcome}: {len(found)} row(s)")
        if sent.op == "adjust":
            adjusted += sent.amount * len(found)
        elif sent.op == "rpc-balance":
            sets += sum((Decimal(r.amount) for r in found), Decimal(0))
            wrong += [
                f"{sent.marker} set {r.balance_after}, asked {sent.amount}"
                for r in found
                if Decimal(r.balance_after) != sent.amount
            ]
        else:
            transfers += sum((Decimal(r.amount) for r in found), Decimal(0))
    unexplained += [f"{marker} (never sent)" for marker in by_marker]
    created = balances - (top_ups + adjusted + sets - completed_cost)
    return [
        Check("financial verify: problems", len(problems), "; ".join(map(str, problems[:3]))),
        Check("sum of balances - sum of ledger rows", balances - ledger),
        Check(
            "money created (+) or lost (-) against the requests",
            created,
            f"balances {balances} = top-ups {top_ups} + adjustments {adjusted} + "
            f"balance sets {sets} - completed prints {completed_cost} + {created}",
        ),
        Check("print charges and refunds + completed prints' cost", prints + completed_cost),
        Check("transfer rows not netting to zero", transfers),
        Check("ledger rows no request explains", len(unexplained), "; ".join(unexplained[:3])),
        Check("requests whose ledger rows contradict the answer", len(wrong), "; ".join(wrong[:5])),
    ]


def answer_checks(record: Record) -> list[Check]:
    """A fault is answered 503 (with Retry-After) or not at all; a 500 is a crash."""
    crashes = {op: counts["5xx"] for op, counts in record.counts.items() if counts.get("5xx")}
    return [
        Check(
            "answers 5xx other than 503 (a crash, not a refusal)",
            sum(crashes.values()),
            ", ".join(f"{op} {n}" for op, n in sorted(crashes.items())),
        )
    ]


def config_checks(faults: Faults) -> list[Check]:
    """Whether the config change was in force on every machine within CONFIG_WITHIN."""
    lags = ", ".join(f"{m} {lag * 1000:.0f} ms" for m, lag in sorted(faults.config_lag.items()))
    late = [m for m, lag in faults.config_lag.items() if lag > CONFIG_WITHIN]
    return [
        Check(f"machines a config change took over {CONFIG_WITHIN:g} s to reach", len(late), lags),
        Check("config change probed on every machine", 2 - len(faults.config_lag)),
    ]


def cache_checks(record: Record) -> list[Check]:
    """Whether each server's cached document-log pages heard of the other's uploads."""
    waits = sorted(record.log_waits)
    spread = (
        f"{len(waits)} uploads: p50 {waits[len(waits) // 2] * 1000:.0f} ms, "
        f"p99 {p99(waits) * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms"
        if waits
        else "no uploads read back"
    )
    return [
        Check(
            f"uploads the other machine's document log missed for {STALE_AFTER:g} s",
            len(record.stale_pages),
            ", ".join(record.stale_pages[:5]),
        ),
        Check("(info) the other machine's document log showed an upload after", 0, spread),
    ]


def job_checks(session: Session, record: Record, outputs: dict[int, str]) -> list[Check]:
    jobs = session.execute(
        text(
            "SELECT j.id, j.state, j.cost, j.charge_trx_id, j.refund_trx_id, j.cups_job_id,"
            " d.title, d.source_id FROM print_job j JOIN document d ON d.id = j.document_id"
        )
    ).all()
    open_jobs = [j for j in jobs if j.state in ("queued", "submitted")]
    states: dict[str, int] = defaultdict(int)
    for job in jobs:
        states[job.state] += 1
    unsettled = []
    for job in jobs:
        charged = job.charge_trx_id is not None
        refunded = job.refund_trx_id is not None
        if job.state == "completed" and (refunded or (job.cost > 0 and not charged)):
            unsettled.append(f"job {job.id} completed but refunded or never charged")
        elif job.state in ("canceled", "aborted", "failed") and charged and not refunded:
            unsettled.append(f"job {job.id} {job.state} but not refunded")
    sources = {j.source_id for j in jobs}
    answered = {t: d for t, d in record.uploads.items() if d is not None}
    without_job = [t for t, d in answered.items() if d not in sources]
    printed_titles: dict[str, int] = defaultdict(int)
    for title in outputs.values():
        printed_titles[title] += 1
    twice = {t: n for t, n in printed_titles.items() if n > 1}
    jobs_per_title: dict[str, int] = defaultdict(int)
    for job in jobs:
        jobs_per_title[job.title] += 1
    completed_missing = [
        j.id for j in jobs if j.state == "completed" and j.cups_job_id not in outputs
    ]
    refunded_printed = [j.id for j in jobs if j.state != "completed" and j.cups_job_id in outputs]
    stray = [t for t in printed_titles if t not in jobs_per_title]
    return [
        Check("print jobs still open (queued/submitted)", len(open_jobs)),
        Check("jobs neither printed nor refunded", len(unsettled), "; ".join(unsettled[:5])),
        Check(
            "uploads answered 200 without a print job", len(without_job), ", ".join(without_job[:5])
        ),
        Check(
            "documents printed twice (capture outputs)",
            len(twice),
            ", ".join(f"{t} x{n}" for t, n in list(twice.items())[:5]),
        ),
        Check("documents with two print jobs", sum(1 for n in jobs_per_title.values() if n > 1)),
        Check(
            "completed jobs without an output",
            len(completed_missing),
            ", ".join(map(str, completed_missing[:5])),
        ),
        Check("outputs of no print job", len(stray), ", ".join(stray[:5])),
        Check(
            "(info) print jobs by final state",
            0,
            ", ".join(f"{state} {n}" for state, n in sorted(states.items())),
        ),
        # Not an invariant: printsrv prefers a free print to charging twice (see jobs.py).
        Check(
            "(info) refunded jobs CUPS printed anyway",
            0,
            f"{len(refunded_printed)}: {refunded_printed[:5]}",
        ),
    ]


def orphan_checks(database_url: str, machines: list[Machine], faults: Faults) -> list[Check]:
    """Stored PDFs no kept document names, and work directories left in tmp/, per machine."""
    from printsrv.documents.log import ORPHAN_GRACE, sweep_orphans
    from printsrv.documents.store import PdfStore
    from printsrv.platform.database import Database
    from printsrv.platform.models import utcnow

    engine = create_engine(database_url)
    with engine.connect() as connection:
        kept = set(
            connection.execute(
                text("SELECT DISTINCT pdf_sha256 FROM document WHERE store")
            ).scalars()
        )
    engine.dispose()
    checks = []
    explained_total = 0
    for machine in machines:
        store = PdfStore(machine.home)
        named = {store.path_for(digest) for digest in kept}
        # Every file under the data directory is a stored PDF a kept document names, or left over
        # (a PDF nobody names, a request's work directory in tmp/, anything else).
        left = [
            path
            for path in machine.home.rglob("*")
            if path.is_file() and path not in named and store.tmp not in path.parents
        ]
        left += list(store.tmp.iterdir()) if store.tmp.is_dir() else []
        if machine.name == faults.victim and faults.killed_at:
            # Left by the kill -9 (written before it): expected, and the sweep's to remove.
            by_kill = [p for p in left if _newest(p) <= faults.killed_at]
            after = [p for p in left if _newest(p) > faults.killed_at]
        else:
            by_kill, after = [], left
        checks.append(
            Check(
                f"orphan files on machine {machine.name}",
                len(after),
                ", ".join(str(p) for p in after[:3]),
            )
        )
        explained_total += len(by_kill)
        if by_kill:
            db = Database(database_url)
            try:
                sweep_orphans(db, store, now=utcnow() + ORPHAN_GRACE + timedelta(minutes=1))
            finally:
                db.dispose()
            remaining = [p for p in by_kill if p.exists()]
            checks.append(
                Check(
                    "files the kill left that the sweep does not remove",
                    len(remaining),
                    ", ".join(map(str, remaining[:3])),
                )
            )
    checks.append(
        Check("(info) files the kill -9 left, swept after ORPHAN_GRACE", 0, str(explained_total))
    )
    return checks


def _newest(path: Path) -> float:
    try:
        paths = [path, *path.rglob("*")] if path.is_dir() else [path]
        return max(p.stat().st_mtime for p in paths)
    except FileNotFoundError:
        return 0.0


# --- the report -------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def print_requests(record: Record, seconds: float) -> None:
    header = ("operation", *RESULT_CLASSES, "total", "req/s", "p50 ms", "p99 ms")
    rows = []
    for op in OPERATIONS:
        counts = record.counts.get(op, {})
        total = sum(counts.values())
        latencies = sorted(record.latencies.get(op, []))
        median = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
        rows.append(
            (
                op,
                *(str(counts.get(c, 0)) for c in RESULT_CLASSES),
                str(total),
                f"{total / seconds:.1f}",
                f"{median:.0f}",
                f"{p99(latencies) * 1000:.0f}",
            )
        )
    _table(
        "requests by result class (503: refused during a fault; conn-error: no answer)",
        header,
        rows,
    )


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def print_checks(checks: list[Check]) -> None:
    rows = []
    for check in checks:
        info = check.name.startswith("(info)")
        verdict = "-" if info else ("ok" if check.ok else "FAIL")
        value = check.detail if info else str(check.value)
        detail = "" if info else check.detail
        rows.append((check.name, value, verdict, detail[:160]))
    _table("invariants", ("invariant", "value", "", "detail"), rows)


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What a soak found: every check, what the clients saw, and when the faults came."""

    checks: list[Check]
    record: Record
    faults: Faults

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return all(check.ok for check in self.checks)


def soak(*, minutes: float, threads: int, keep: bool = False) -> Result:
    """Run the soak and print its tables; return what it found."""
    seconds = minutes * 60
    base = Path(tempfile.mkdtemp(prefix="printsrv-soak-", dir="/tmp"))
    os.chmod(base, 0o755)  # noqa: S103 - postgres and cupsd's lp user must reach their parts
    pg = PrivatePostgres(base / "pg")
    cups = PrivateCups(prefix="printsrv-soak-cupsd-")
    machines: list[Machine] = []
    try:
        pg.start()
        cups.start()
        cups.add_queue(PRINTER, "capture")
        credentials = prepare(base / "home-a", pg.url, cups)
        machines = [
            Machine(name, base / f"home-{name}", pg.url, base / f"machine-{name}.log")
            for name in ("a", "b")
        ]
        starting = [threading.Thread(target=machine.start) for machine in machines]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        if any(machine.process is None for machine in machines):
            raise RuntimeError("a machine did not start (its log is above)")
        print(
            f"soak: {minutes:g} min, {threads} client threads, machines "
            f"{', '.join(m.url for m in machines)}, PostgreSQL port {pg.port}, "
            f"cupsd {cups.server}",
            flush=True,
        )
        record = Record()
        faults = Faults()
        stop = threading.Event()
        clients = [Client(n, machines, credentials, record) for n in range(threads)]
        workers = [threading.Thread(target=c.run, args=(stop,)) for c in clients]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        probe = functools.partial(config_probe, machines, credentials, record, faults)
        faulting = fault_threads(seconds, started, stop, pg, machines, cups, faults, probe)
        for thread in faulting:
            thread.start()
        time.sleep(seconds)
        for thread in faulting:  # a fault still under way ends under load
            thread.join()
        stop.set()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
        drain_started = time.monotonic()
        still_open = wait_for_open_jobs(pg.url, timeout=180)
        drained = time.monotonic() - drain_started
        for machine in machines:
            machine.stop()
        print(f"\nload {elapsed:.0f} s, then {drained:.0f} s until every print job was final")
        print("\nfaults")
        for line in faults.log:
            print("  " + line)
        print_requests(record, elapsed)
        if record.surprises:
            print(f"\nanswers a client did not expect (first 15 of {record.surprise_count}):")
            for line in record.surprises[:15]:
                print("  " + line[:300].replace("\n", " "))
        for machine in machines:
            errors = Counter(machine.errors())
            if errors:
                print(f"\nexceptions in machine {machine.name}'s log ({machine.log.name}):")
                for line, count in errors.most_common(10):
                    print(f"  {count:4d} x {line[:200]}")
        checks = run_checks(pg.url, record, cups, machines, faults)
        if still_open:
            print(f"\n{still_open} print job(s) still open 180 s after the load stopped")
        print_checks(checks)
        result = Result(checks, record, faults)
        print(f"\nsoak: {'every invariant held' if result.ok else 'AN INVARIANT FAILED'}")
        return result
    finally:
        for machine in machines:
            machine.stop()
        cups.close()
        pg.stop()
        if keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def run_checks(
    database_url: str,
    record: Record,
    cups: PrivateCups,
    machines: list[Machine],
    faults: Faults,
) -> list[Check]:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            checks = money_checks(session, record, top_ups=TOP_UP * USERS)
            checks += job_checks(session, record, capture_outputs(cups))
        checks += answer_checks(record)
        checks += cache_checks(record)
        checks += config_checks(faults)
    finally:
        engine.dispose()
    checks += orphan_checks(database_url, machines, faults)
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = parser.parse_args()
    result = soak(minutes=args.minutes, threads=args.threads, keep=args.keep)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
