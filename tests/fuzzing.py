"""Schemathesis against a live printsrv: the /restful/v1 description (GET openapi.json) as
the server publishes it, every operation fuzzed with real credentials over a real socket.

Shared by tests/e2e/test_openapi_fuzz.py (a few examples per operation, on each back-end)
and bench/fuzz.py (as many as fit in the minutes given). `seed_world` sets up what the
operations need to get past their gates (the REST admin, two users with UUIDs and credit,
a held document, a print agent with a claimed job, a release station);
`fuzz` runs the operations and keeps what it saw.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException
from printing_support import pdf_bytes
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup
from support import set_config, wait_until

from printsrv.agents import registry
from printsrv.agents.printers import printer_to_wire
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing.models import Printer
from printsrv.printing.types import PrinterInfo

ADMIN = ("fuzz-admin", "fuzz-admin-password-0123")
USER = "fuzzer"
OTHER_USER = "rijk"
AGENT = "fuzz-agent"
PIN = "4711"
PRINTER = "hall"
GONE_PRINTER = "attic"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass(frozen=True)
class World:
    """What the fuzzed requests authenticate with, and the data seeded for them."""

    base: str  # http://127.0.0.1:PORT/restful/v1
    admin: tuple[str, str]
    user: tuple[str, str]  # name, UUID
    agent: tuple[str, str]  # name, token
    document_id: int  # a document held in the user's inbox
    agent_job: int  # a print the agent has claimed

    def headers_for(self, security: list[dict[str, list[str]]]) -> dict[str, str]:
        """The credentials of the operation's first security requirement (none: public)."""
        if not security:
            return {}
        scheme = next(iter(security[0]))
        if scheme == "admin":
            return {"Authorization": _basic(*self.admin)}
        if scheme == "user":
            return {"Authorization": _basic(*self.user)}
        return {"Authorization": f"Bearer {self.agent[1]}", "Printsrv-Agent": self.agent[0]}


def _basic(name: str, password: str) -> str:
    return httpx.BasicAuth(name, password)._auth_header


def seed_world(installation: Installation, base_url: str) -> World:
    """The REST admin, the users `fuzzer` (10.00 credit, PIN) and `rijk`, a held PDF of
    fuzzer's, a print agent with a claimed job, a release station on loopback."""
    set_config(
        installation,
        {
            "api.restful.auth.username": ADMIN[0],
            "api.restful.auth.password": ADMIN[1],
            "release.station.ip-addresses-allowed": "127.0.0.1/32",
            "agents.poll-secs": "1",  # a long-poll the fuzzer opens ends within a second
            # No CUPS: the tests never touch the machine's own (and nothing here prints).
            "cups.server": str(installation.env.home / "no-cups.sock"),
        },
    )
    with installation.db.transaction() as session:
        users.add_user(session, USER)
        users.add_user(session, OTHER_USER)
        uuid = users.issue_uuid(session, USER, hasher=installation.hasher)
        users.set_user_fields(session, USER, pin=PIN, hasher=installation.hasher)
        token = registry.add_agent(session, AGENT, hasher=installation.hasher)
        # Printers as a CUPS sync leaves them (no CUPS runs here): one there, one gone.
        session.add_all([Printer(name=PRINTER), Printer(name=GONE_PRINTER, present=False)])
    base = f"{base_url}/restful/v1"
    admin = httpx.BasicAuth(*ADMIN)
    with httpx.Client(base_url=base, timeout=60) as client:
        # The running server reads the config it was just given within a moment.
        wait_until(lambda: client.get("/documents", auth=admin).status_code == 200, timeout=10)
        credit = client.post(
            "/financial/account/balance",
            params={"type": "USER", "name": USER, "amount": "10.00"},
            auth=admin,
        )
        credit.raise_for_status()
        upload = client.post(
            "/documents/print",
            files={"file": ("seed.pdf", pdf_bytes(1), "application/pdf")},
            auth=(USER, uuid),
        )
        upload.raise_for_status()
        agent_job = _claimed_agent_job(client, (USER, uuid), (AGENT, token))
    return World(
        base=base,
        admin=ADMIN,
        user=(USER, uuid),
        agent=(AGENT, token),
        document_id=upload.json()["id"],
        agent_job=agent_job,
    )


def _claimed_agent_job(client: httpx.Client, user: tuple[str, str], agent: tuple[str, str]) -> int:
    """A print on the agent's printer, claimed by the agent (its lease runs out on its own)."""
    headers = {"Authorization": f"Bearer {agent[1]}", "Printsrv-Agent": agent[0]}
    info = PrinterInfo(
        name="site-laser", state="idle", state_message="", state_reasons=(), accepting=True,
        info="", location="", make_and_model="", copies_supported=(1, 99),
        sides_supported=("one-sided",), print_color_mode_supported=("monochrome",),
        media_supported=(), sheet_collate_supported=(), number_up_supported=(1,),
        page_ranges_supported=False, orientation_requested_supported=(),
        print_quality_supported=(), print_scaling_supported=(), defaults=(),
    )  # fmt: skip
    registered = client.post(
        "/agent/printers", json={"printers": [printer_to_wire(info)]}, headers=headers
    )
    registered.raise_for_status()
    upload = client.post(
        "/documents/print",
        files={"file": ("agent.pdf", pdf_bytes(1), "application/pdf")},
        auth=user,
    )
    upload.raise_for_status()
    printed = client.post(
        f"/documents/{upload.json()['id']}/print",
        data={"printer": registered.json()["printers"][0]},
        auth=user,
    )
    printed.raise_for_status()
    claimed = client.get("/agent/jobs/next", params={"wait": "5"}, headers=headers)
    claimed.raise_for_status()
    return int(claimed.json()["job"]["id"])


@dataclass
class FuzzFinding:
    kind: str  # the check that failed, or "unsent"
    operation: str
    status: int | None
    detail: str
    reproduce: str


@dataclass
class FuzzReport:
    """What a run did: requests sent, statuses seen per operation, failures by kind."""

    operations: int = 0
    requests: int = 0
    seen: dict[str, set[int]] = field(default_factory=dict)
    findings: list[FuzzFinding] = field(default_factory=list)

    def kinds(self) -> Counter[str]:
        return Counter(finding.kind for finding in self.findings)

    def failures(self) -> list[FuzzFinding]:
        """The findings that are the server's fault (not requests the client could not send)."""
        return [finding for finding in self.findings if finding.kind != "unsent"]

    def summary(self, limit: int = 10) -> str:
        lines = [
            f"{self.operations} operations, {self.requests} requests, "
            f"findings by kind: {dict(self.kinds()) or 'none'}"
        ]
        seen_details: set[tuple[str, str]] = set()
        for finding in self.failures():
            if (finding.kind, finding.operation) in seen_details:
                continue
            seen_details.add((finding.kind, finding.operation))
            lines.append(
                f"- {finding.kind} {finding.operation} -> {finding.status}: "
                f"{finding.detail[:400]}\n  {finding.reproduce[:600]}"
            )
            if len(seen_details) >= limit:
                break
        return "\n".join(lines)


def load_schema(world: World) -> Any:
    """The description as the live server publishes it (read with httpx: schemathesis's own
    loader leaves out the operation that serves the description)."""
    answer = httpx.get(f"{world.base}/openapi.json", timeout=30)
    answer.raise_for_status()
    return schemathesis.openapi.from_dict(answer.json())


def operation_key(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def _failures_of(error: BaseException) -> Iterable[Failure]:
    if isinstance(error, FailureGroup):
        for inner in error.exceptions:
            yield from _failures_of(inner)
    elif isinstance(error, Failure):
        yield error


def fuzz(
    schema: Any,
    world: World,
    *,
    examples: int,
    modes: Iterable[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    deadline: float | None = None,
    report: FuzzReport | None = None,
    seed: int | None = None,
) -> FuzzReport:
    """Every operation, `examples` generated requests per generation mode, each checked by
    `CHECKS`; stops starting operations at `deadline` (time.monotonic())."""
    report = report or FuzzReport()
    operations = [result.ok() for result in schema.get_all_operations()]
    report.operations = len(operations)
    for operation in operations:
        key = operation_key(operation.method, operation.path)
        headers = world.headers_for(operation.definition.raw.get("security", []))
        for mode in modes:
            if deadline is not None and time.monotonic() > deadline:
                return report
            _fuzz_operation(operation, mode, key, headers, world, examples, report, seed)
    return report


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    key: str,
    headers: dict[str, str],
    world: World,
    examples: int,
    report: FuzzReport,
    seed: int | None,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=world.base, headers=headers, timeout=60)
        except Exception as error:
            report.findings.append(FuzzFinding("unsent", key, None, repr(error), ""))
            return
        report.requests += 1
        report.seen.setdefault(key, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as error:
            for failure in _failures_of(error):
                report.findings.append(
                    FuzzFinding(
                        type(failure).__name__,
                        key,
                        response.status_code,
                        f"{failure.title}: {failure.message}",
                        case.as_curl_command(headers=headers),
                    )
                )

    if seed is not None:
        run = _seeded(run, seed)
    try:
        run()
    except HypothesisException as error:  # e.g. unsatisfiable: nothing generated
        report.findings.append(FuzzFinding("unsent", key, None, repr(error), ""))


def _seeded(test: Any, seed: int) -> Any:
    from hypothesis import seed as hypothesis_seed

    return hypothesis_seed(seed)(test)
