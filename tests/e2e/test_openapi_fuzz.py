"""/restful/v1 under schemathesis, against the live server over a real socket, on each
back-end: the description it publishes (GET /restful/v1/openapi.json) is the contract.

1. Fuzzing: every operation gets a few generated requests (valid and invalid ones) with real
   credentials (the REST admin, a user by name and UUID, a print agent's token): no answer
   is a 5xx, and every answer is one the description documents (status, content type, body
   schema, headers).
2. Reachability: every error status the description documents for an operation is reached
   by a directed request, whose answer is checked against the description as well. A
   documented status nothing can produce would be a lie in the contract.

bench/fuzz.py runs the same fuzzing for minutes instead of examples (`python -m bench.fuzz`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fuzzing import (
    CHECKS,
    GONE_PRINTER,
    PIN,
    PRINTER,
    World,
    fuzz,
    load_schema,
    seed_world,
)
from printing_support import pdf_bytes
from schemathesis.checks import not_a_server_error
from support import LiveServer, set_config, wait_until

from printsrv.operations.installation import Installation
from printsrv.platform.properties import get_definition

HUGE = 2477118985055212309340749824  # what schemathesis sent: more than 64 bits (SQLite)
PAST_INT = 119916176848  # and on PostgreSQL: more than an INTEGER column's 32 bits
DIRECTED_CHECKS = [check for check in CHECKS if check is not not_a_server_error]
# Per operation and generation mode (valid, invalid): ~27 operations x 2 x 4 requests, about
# 30 s a back-end on a busy 2-core machine.
EXAMPLES = 4


@pytest.fixture
def world(installation: Installation) -> Iterator[World]:
    server = LiveServer(installation).start()
    try:
        yield seed_world(installation, server.url)
    finally:
        server.stop()


def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_description(
    world: World,
) -> None:
    schema = load_schema(world)

    report = fuzz(schema, world, examples=EXAMPLES)

    assert report.failures() == [], report.summary()
    assert report.operations == len(json_operations(world))
    assert report.requests >= report.operations * 2 * 2, report.summary()


# --- every documented error status, reached --------------------------------------------------


def json_operations(world: World) -> dict[str, dict[str, Any]]:
    document = httpx.get(f"{world.base}/openapi.json").json()
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


@dataclass(frozen=True)
class Probe:
    """One directed request: the operation it targets and the status it must get."""

    operation: str  # "POST /documents/{ref}/print"
    status: int
    send: Callable[[httpx.Client], httpx.Response]


def _send(method: str, path: str, **kwargs: Any) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.request(method, path, **kwargs)


def _twice(
    first: Callable[[httpx.Client], httpx.Response],
    second: Callable[[httpx.Client], httpx.Response],
) -> Callable[[httpx.Client], httpx.Response]:
    """Send `first` (its answer does not matter), answer with `second`'s."""

    def send(client: httpx.Client) -> httpx.Response:
        first(client)
        return second(client)

    return send


def _repeated(
    times: int, request: Callable[[httpx.Client], httpx.Response]
) -> Callable[[httpx.Client], httpx.Response]:
    def send(client: httpx.Client) -> httpx.Response:
        for _ in range(times - 1):
            request(client)
        return request(client)

    return send


def specific_probes(world: World, expired: tuple[str, str]) -> list[Probe]:
    """The refusals that need a particular request (the gates' 401/403/503 are generic)."""
    admin = httpx.BasicAuth(*world.admin)
    user = httpx.BasicAuth(*world.user)
    agent = {"Authorization": f"Bearer {world.agent[1]}", "Printsrv-Agent": world.agent[0]}
    doc = world.document_id
    pdf = ("a.pdf", pdf_bytes(1), "application/pdf")
    other_pdf = ("b.pdf", pdf_bytes(2), "application/pdf")
    long = "x" * 600
    held, lapsed = f"/agent/jobs/{world.agent_job}", {"claim": "a-claim-that-lapsed"}
    claim = {"claim": "c"}
    return [
        Probe("GET /documents", 400, _send("GET", "/documents", params={"limit": "x"}, auth=admin)),
        # Found hunting for schemathesis's kind of input (500s once): a page whose offset
        # overflows the database's integers, a number int() refuses (over 4,300 digits).
        *(
            Probe(operation, 400, _send("GET", path, params={"page": page}, auth=auth))
            for operation, path, auth in [
                ("GET /documents", "/documents", admin),
                ("GET /user/documents", "/user/documents", user),
            ]
            for page in (str(HUGE), "9" * 5000)
        ),
        Probe(
            "GET /agent/jobs/next",
            400,
            _send("GET", "/agent/jobs/next", params={"wait": "9" * 5000}, headers=agent),
        ),
        Probe(
            "POST /documents/print",
            400,
            _send("POST", "/documents/print", data={"queue": "x"}, files={}, auth=user),
        ),
        Probe(
            "POST /documents/print",
            404,
            _send(
                "POST", "/documents/print", data={"queue": "nope"}, files={"file": pdf}, auth=user
            ),
        ),
        Probe(
            "POST /documents/print",
            409,
            _twice(
                _send(
                    "POST",
                    "/documents/print",
                    files={"file": pdf},
                    headers={"Idempotency-Key": "upload-1"},
                    auth=user,
                ),
                _send(
                    "POST",
                    "/documents/print",
                    files={"file": other_pdf},
                    headers={"Idempotency-Key": "upload-1"},
                    auth=user,
                ),
            ),
        ),
        Probe(
            "POST /documents/print",
            415,
            _send(
                "POST",
                "/documents/print",
                files={"file": ("noise.bin", b"\x00\x01 not a document", "application/x-noise")},
                auth=user,
            ),
        ),
        Probe("GET /documents/{ref}", 404, _send("GET", "/documents/999999", auth=admin)),
        Probe(
            "GET /documents/waiting",
            400,
            _send("GET", "/documents/waiting", params={"limit": "1001"}, auth=admin),
        ),
        # A NUL where a name or key goes: PostgreSQL refuses it in text (500s once).
        Probe("GET /documents/{ref}", 404, _send("GET", "/documents/ext_id=a%00", auth=admin)),
        Probe(
            "GET /documents/{ref}/pdf", 404, _send("GET", "/documents/ext_id=a%00/pdf", auth=admin)
        ),
        Probe("GET /jobs/{key}", 404, _send("GET", "/jobs/a%00", auth=admin)),
        Probe("GET /jobs/{key}/files/{name}", 404, _send("GET", "/jobs/a%00/files/b", auth=admin)),
        Probe("POST /jobs", 404, _send("POST", "/jobs", json={"key": "a\x00"}, auth=admin)),
        Probe(
            "POST /reports/accounttrx",
            400,
            _send(
                "POST",
                "/reports/accounttrx",
                json={"select": {"account_name": "fuzzer", "text": "a\x00"}},
                auth=admin,
            ),
        ),
        # Ids past an INTEGER column (PostgreSQL's 32 bits) are no document either.
        Probe("GET /documents/{ref}", 404, _send("GET", f"/documents/{PAST_INT}", auth=admin)),
        Probe(
            "GET /documents/{ref}/pdf", 404, _send("GET", f"/documents/{PAST_INT}/pdf", auth=admin)
        ),
        Probe(
            "POST /documents/{ref}/print",
            404,
            _send("POST", f"/documents/{PAST_INT}/print", data={"printer": PRINTER}, auth=user),
        ),
        Probe(
            "POST /documents/{ref}/approve",
            404,
            _send("POST", f"/documents/{PAST_INT}/approve", auth=admin),
        ),
        Probe("GET /documents/{ref}/pdf", 404, _send("GET", "/documents/999999/pdf", auth=admin)),
        Probe(
            "POST /documents/{ref}/print",
            400,
            _send(
                "POST",
                f"/documents/{doc}/print",
                data={"printer": PRINTER, "ipp_options": "{not json"},
                auth=user,
            ),
        ),
        Probe(
            "POST /documents/{ref}/print",
            404,
            _send("POST", "/documents/999999/print", data={"printer": PRINTER}, auth=user),
        ),
        Probe(
            "POST /documents/{ref}/print",
            409,
            _twice(
                _send(
                    "POST",
                    "/documents/999999/print",
                    data={"printer": PRINTER},
                    headers={"Idempotency-Key": "release-1"},
                    auth=user,
                ),
                _send(
                    "POST",
                    "/documents/999998/print",
                    data={"printer": PRINTER},
                    headers={"Idempotency-Key": "release-1"},
                    auth=user,
                ),
            ),
        ),
        *(
            probe
            for verb in ("approve", "deny")
            for probe in (
                Probe(
                    f"POST /documents/{{ref}}/{verb}",
                    400,
                    _send("POST", f"/documents/{doc}/{verb}", data={"comment": long}, auth=admin),
                ),
                Probe(
                    f"POST /documents/{{ref}}/{verb}",
                    404,
                    _send("POST", f"/documents/999999/{verb}", auth=admin),
                ),
                Probe(
                    f"POST /documents/{{ref}}/{verb}",
                    409,
                    _send("POST", f"/documents/{doc}/{verb}", auth=admin),  # held, not ruled
                ),
            )
        ),
        *transfer_probes(user),
        *balance_probes(admin),
        Probe("GET /financial/balance", 400, _send("GET", "/financial/balance?x=1", auth=user)),
        Probe(
            "POST /tests/echo",
            413,
            _send("POST", "/tests/echo", content=b"x" * (1024 * 1024 + 1), auth=admin),
        ),
        Probe("GET /user/documents", 400, _send("GET", "/user/documents?page=x", auth=user)),
        Probe(
            "POST /reports/accounttrx",
            400,
            _send("POST", "/reports/accounttrx", content=b"{not json", auth=admin),
        ),
        Probe(
            "POST /reports/accounttrx",
            404,
            _send(
                "POST",
                "/reports/accounttrx",
                json={"select": {"account_type": "SHARED", "account_name": "nobody"}},
                auth=admin,
            ),
        ),
        Probe(
            "POST /reports/accounttrx",
            413,
            _send("POST", "/reports/accounttrx", content=b" " * (64 * 1024 + 1), auth=admin),
        ),
        # Found by schemathesis (500s once): a year no C long holds.
        Probe(
            "POST /reports/accounttrx",
            400,
            _send(
                "POST",
                "/reports/accounttrx",
                json={"select": {"date_from": {"ccyy": HUGE, "mm": 1, "dd": 1}}},
                auth=admin,
            ),
        ),
        *release_probes(world),
        *job_probes(world, admin, expired),
        Probe(
            "POST /agent/printers", 400, _send("POST", "/agent/printers", json={}, headers=agent)
        ),
        Probe(
            "POST /agent/printers",
            413,
            _send("POST", "/agent/printers", content=b" " * (4 * 1024 * 1024 + 1), headers=agent),
        ),
        Probe("GET /agent/jobs/next", 400, _send("GET", "/agent/jobs/next?wait=x", headers=agent)),
        Probe("GET /agent/jobs/next", 400, _send("GET", "/agent/jobs/next?max=17", headers=agent)),
        Probe(
            "POST /agent/jobs/states",
            400,
            _send("POST", "/agent/jobs/states", json={"reports": "x"}, headers=agent),
        ),
        Probe(
            "POST /agent/jobs/states",
            413,
            _send(
                "POST", "/agent/jobs/states", content=b" " * (4 * 1024 * 1024 + 1), headers=agent
            ),
        ),
        Probe("GET /agent/jobs/{job}/pdf", 400, _send("GET", "/agent/jobs/1/pdf", headers=agent)),
        Probe(
            "GET /agent/jobs/{job}/pdf",
            404,
            _send("GET", "/agent/jobs/999999/pdf?claim=c", headers=agent),
        ),
        Probe(
            "POST /agent/jobs/{job}/renew",
            400,
            _send("POST", "/agent/jobs/1/renew", json={}, headers=agent),
        ),
        Probe(
            "POST /agent/jobs/{job}/renew",
            404,
            _send("POST", "/agent/jobs/999999/renew", json={"claim": "c"}, headers=agent),
        ),
        Probe(
            "POST /agent/jobs/{job}/state",
            400,
            _send("POST", "/agent/jobs/1/state", json={"claim": "c"}, headers=agent),
        ),
        *(
            Probe(operation, 409, _send(method, path, headers=agent, **more))
            for operation, method, path, more in [
                ("GET /agent/jobs/{job}/pdf", "GET", f"{held}/pdf?claim=lapsed", {}),
                ("POST /agent/jobs/{job}/renew", "POST", f"{held}/renew", {"json": lapsed}),
                (
                    "POST /agent/jobs/{job}/state",
                    "POST",
                    f"{held}/state",
                    {"json": {**lapsed, "state": "completed"}},
                ),
            ]
        ),
        # Found by schemathesis (500s once): a job id no database integer holds.
        *(
            Probe(operation, 404, _send(method, path.format(job=job), headers=agent, **more))
            for job in (HUGE, PAST_INT)
            for operation, method, path, more in [
                ("GET /agent/jobs/{job}/pdf", "GET", "/agent/jobs/{job}/pdf?claim=c", {}),
                (
                    "POST /agent/jobs/{job}/renew",
                    "POST",
                    "/agent/jobs/{job}/renew",
                    {"json": claim},
                ),
                (
                    "POST /agent/jobs/{job}/state",
                    "POST",
                    "/agent/jobs/{job}/state",
                    {"json": {**claim, "state": "completed"}},
                ),
            ]
        ),
        Probe(
            "POST /agent/jobs/{job}/state",
            404,
            _send(
                "POST",
                "/agent/jobs/999999/state",
                json={"claim": "c", "state": "completed"},
                headers=agent,
            ),
        ),
    ]


def transfer_probes(user: httpx.BasicAuth) -> list[Probe]:
    def transfer(amount: str, key: str | None = None, name: str = "rijk") -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        params = {"name": name, "amount": amount}
        return _send("POST", "/financial/transfer", params=params, headers=headers, auth=user)

    return [
        Probe("POST /financial/transfer", 400, transfer("abc")),
        Probe("POST /financial/transfer", 409, transfer("90.00")),  # more than the balance
        Probe("POST /financial/transfer", 404, transfer("0.01", name="nobody")),
        Probe(
            "POST /financial/transfer",
            409,
            _twice(transfer("0.01", "transfer-1"), transfer("0.02", "transfer-1")),
        ),
    ]


def balance_probes(admin: httpx.BasicAuth) -> list[Probe]:
    path = "/financial/account/balance"

    def change(amount: str, key: str | None = None, name: str = "fuzzer") -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        params = {"type": "USER", "name": name, "amount": amount, "adjust": "true"}
        return _send("POST", path, params=params, headers=headers, auth=admin)

    return [
        Probe(
            f"GET {path}", 400, _send("GET", path, params={"type": "X", "name": "a"}, auth=admin)
        ),
        Probe(
            f"GET {path}",
            404,
            _send("GET", path, params={"type": "USER", "name": "nobody"}, auth=admin),
        ),
        Probe(f"POST {path}", 400, change("abc")),
        Probe(f"POST {path}", 404, change("1.00", name="nobody")),
        Probe(f"POST {path}", 409, _twice(change("0.01", "adjust-1"), change("0.02", "adjust-1"))),
    ]


def release_probes(world: World) -> list[Probe]:
    def terminal(**body: Any) -> Any:
        return _send("POST", "/release", json=body)

    wrong_pin = terminal(printer=PRINTER, user=world.user[0], pin="0000")
    return [
        Probe("POST /release", 400, terminal(card="1")),
        # A NUL in the printer's name: PostgreSQL refuses it in text (a 500 once).
        Probe("POST /release", 404, terminal(printer="hall\x00", card="1")),
        # A document id past an INTEGER column, by the right person (a 500 once).
        Probe(
            "POST /release",
            400,
            terminal(printer=PRINTER, user=world.user[0], pin=PIN, documents=[PAST_INT]),
        ),
        Probe("POST /release", 401, wrong_pin),
        Probe("POST /release", 404, terminal(printer="nope", user=world.user[0], pin="0000")),
        Probe("POST /release", 409, terminal(printer=GONE_PRINTER, user=world.user[0], pin="0000")),
        Probe("POST /release", 413, _send("POST", "/release", content=b" " * (16 * 1024 + 1))),
    ]


def job_probes(world: World, admin: httpx.BasicAuth, expired: tuple[str, str]) -> list[Probe]:
    expired_key, expired_file = expired
    return [
        Probe("POST /jobs", 400, _send("POST", "/jobs", json={}, auth=admin)),
        Probe("POST /jobs", 404, _send("POST", "/jobs", json={"key": "nope"}, auth=admin)),
        Probe("POST /jobs", 410, _send("POST", "/jobs", json={"key": expired_key}, auth=admin)),
        Probe(
            "POST /jobs", 413, _send("POST", "/jobs", content=b" " * (64 * 1024 + 1), auth=admin)
        ),
        Probe("GET /jobs/{key}", 404, _send("GET", "/jobs/nope", auth=admin)),
        Probe("GET /jobs/{key}", 410, _send("GET", f"/jobs/{expired_key}", auth=admin)),
        Probe(
            "GET /jobs/{key}/files/{name}",
            404,
            _send("GET", f"/jobs/{expired_key}x/files/{expired_file}", auth=admin),
        ),
        Probe(
            "GET /jobs/{key}/files/{name}",
            410,
            _send("GET", f"/jobs/{expired_key}/files/{expired_file}", auth=admin),
        ),
    ]


def concrete(path: str) -> str:
    """A template's path with a value in each parameter (the gates answer before they count)."""
    return (
        path.replace("{ref}", "1")
        .replace("{job}", "1")
        .replace("{key}", "k")
        .replace("{name}", "f")
    )


def gate_probes(
    operations: dict[str, dict[str, Any]], status: int, headers: dict[str, str], world: World
) -> list[Probe]:
    """`status` for every operation that documents it, asked with the operation's own
    credentials plus `headers` (401: none at all)."""
    probes = []
    for key, operation in operations.items():
        if str(status) not in operation["responses"] or key == "POST /release":
            continue
        method, path = key.split(" ", 1)
        sent = dict(headers)
        if status != 401:
            security = operation["security"]
            if status == 503 and {"user": []} in security:
                security = [{"user": []}]
            sent = {**world.headers_for(security), **headers}
        probes.append(Probe(key, status, _send(method, concrete(path), headers=sent)))
    return probes


def expire_a_job(installation: Installation, world: World) -> tuple[str, str]:
    """A finished job of the admin's whose results' time is up (kept for 1 s, then gone):
    its key and its result file's name."""

    def expired_job() -> tuple[str, str] | None:
        answer = httpx.post(
            f"{world.base}/jobs",
            json={"async": False, "type": "report.accounttrx", "argument": {}},
            auth=world.admin,
            timeout=60,
        ).json()
        time.sleep(1.2)
        gone = httpx.get(f"{world.base}/jobs/{answer['key']}", auth=world.admin)
        if gone.status_code != 410:
            return None
        return str(answer["key"]), next(iter(answer["urls"]))

    set_config(installation, {"api.jobs.result-ttl-secs": "1"})
    try:
        return wait_until(expired_job, timeout=15)  # once the server has read the new TTL
    finally:
        set_config(installation, {"api.jobs.result-ttl-secs": "86400"})


def run_probes(
    world: World, schema: Any, probes: list[Probe], reached: set[tuple[str, int]]
) -> None:
    with httpx.Client(base_url=world.base, timeout=60) as client:
        for probe in probes:
            response = probe.send(client)
            assert response.status_code == probe.status, (
                probe.operation,
                probe.status,
                response.status_code,
                response.text[:300],
            )
            method, path = probe.operation.split(" ", 1)
            response.request.read()  # a multipart body, for schemathesis's record of it
            parameters = {name: "1" for name in re.findall(r"\{(\w+)\}", path)}
            case = schema[path][method].Case(path_parameters=parameters)
            # The status is asserted above (a documented 503 included); the rest is checked.
            case.validate_response(response, checks=DIRECTED_CHECKS)
            reached.add((probe.operation, probe.status))


def test_every_documented_error_status_is_reached_and_answered_as_described(
    installation: Installation, world: World
) -> None:
    schema = load_schema(world)
    operations = json_operations(world)
    documented = {
        (key, int(status))
        for key, operation in operations.items()
        for status in operation["responses"]
        if int(status) >= 400
    }
    reached: set[tuple[str, int]] = set()

    run_probes(world, schema, specific_probes(world, expire_a_job(installation, world)), reached)
    run_probes(world, schema, gate_probes(operations, 401, {}, world), reached)
    with configured(installation, world, {"system.maintenance": "Y"}):
        run_probes(world, schema, gate_probes(operations, 503, {}, world), reached)
        maintenance = _send("POST", "/release", json={"printer": PRINTER, "card": "1"})
        run_probes(world, schema, [Probe("POST /release", 503, maintenance)], reached)
    # Through a trusted proxy from a remote client over plain http: no credentials travel.
    plain_http = {"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "http"}
    with configured(installation, world, {"server.trusted-proxies": "127.0.0.1/32"}):
        run_probes(world, schema, gate_probes(operations, 403, plain_http, world), reached)
        stranger = _send("POST", "/release", json={"printer": PRINTER}, headers=plain_http)
        run_probes(world, schema, [Probe("POST /release", 403, stranger)], reached)
    # The largest upload, at its least (1 KiB), and a file just over it.
    set_config(installation, {"print.upload.max-bytes": "1024"})
    big = ("big.pdf", b"%PDF-1.4\n" + b" " * 2048, "application/pdf")
    too_big = _send("POST", "/documents/print", files={"file": big}, auth=world.user)
    with httpx.Client(base_url=world.base, timeout=60) as client:
        wait_until(lambda: too_big(client).status_code == 413, timeout=10)
    run_probes(world, schema, [Probe("POST /documents/print", 413, too_big)], reached)
    set_config(
        installation, {"print.upload.max-bytes": get_definition("print.upload.max-bytes").default}
    )
    wrong_pin = _send(
        "POST", "/release", json={"printer": PRINTER, "user": "fuzzer", "pin": "0000"}
    )
    run_probes(world, schema, [Probe("POST /release", 429, _repeated(12, wrong_pin))], reached)

    assert sorted(documented - reached) == [], "documented statuses no request reached"


@contextlib.contextmanager
def configured(installation: Installation, world: World, values: dict[str, str]) -> Iterator[None]:
    """`values` set while inside, as the running server sees them; then the defaults again."""
    before = {name: get_definition(name).default for name in values}
    set_config(installation, values)
    wait_until(lambda: seen_by_server(world, values), timeout=10)
    try:
        yield
    finally:
        set_config(installation, before)
        wait_until(lambda: seen_by_server(world, before), timeout=10)


def seen_by_server(world: World, values: dict[str, str]) -> bool:
    """Whether the server answers by `values` yet (the two settings these tests change)."""
    if "system.maintenance" in values:
        balance = httpx.get(f"{world.base}/financial/balance", auth=world.user)
        return (balance.status_code == 503) == (values["system.maintenance"] == "Y")
    forwarded = httpx.get(
        f"{world.base}/tests/http/request", headers={"X-Forwarded-For": "192.0.2.7"}
    ).json()
    return (forwarded["remoteAddr"] == "192.0.2.7") == bool(values["server.trusted-proxies"])
