"""The agent REST API over a real socket: a remote printer's job waits for its agent, is
claimed once with a lease, fetched, reported, and refunded when it fails, runs out of
attempts or its agent is removed. The agent here is the test speaking the protocol; the
real agent (`printsrv agent run`) is tested in test_agents_sites.py."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    set_config_live,
    upload,
)
from sqlalchemy import update
from support import JSONRPC_KEY, LiveServer, jsonrpc_call, set_config, wait_until

from printsrv.agents import registry
from printsrv.agents.models import Agent
from printsrv.agents.printers import printer_to_wire
from printsrv.cli import main
from printsrv.platform.environment import Environment
from printsrv.platform.models import utcnow
from printsrv.printing import queues
from printsrv.printing.cupsclient import CupsClient
from printsrv.printing.models import Printer, PrintJob

STATUS = '{"jsonrpc":"2.0","id":1,"method":"systemStatus"}'


@dataclass
class FakeAgent:
    """The protocol, spoken by the test."""

    url: str
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Printsrv-Agent": self.name}

    def post(self, path: str, body: object) -> httpx.Response:
        return httpx.post(f"{self.url}/restful/v1/agent{path}", json=body, headers=self.headers)

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(
            f"{self.url}/restful/v1/agent{path}", params=params, headers=self.headers, timeout=40
        )

    def next(self, wait: int = 0) -> dict | None:
        answer = self.get("/jobs/next", wait=wait)
        assert answer.status_code == 200, answer.text
        return answer.json()["job"]

    def report(self, job: dict, state: str, **more: object) -> httpx.Response:
        return self.post(
            f"/jobs/{job['id']}/state", {"claim": job["claim"], "state": state, **more}
        )


@dataclass
class Site:
    setup: PrintSetup
    server: LiveServer
    a: FakeAgent
    b: FakeAgent

    def job(self, job_id: int) -> PrintJob:
        with self.setup.installation.db.read() as session:
            job = session.get(PrintJob, job_id)
            assert job is not None
            return job

    def print_on(self, queue: str) -> int:
        answer = upload(self.server.url, self.setup.auth, "a.pdf", pdf_bytes(2), queue=queue)
        assert answer.status_code == 200, answer.text
        return self.setup.jobs()[-1].id


@pytest.fixture
def site(printing_setup: PrintSetup) -> Iterator[Site]:  # noqa: F811
    """Agents site-a and site-b, each with the central cupsd's capture queue registered as
    its own printer, queues hall-a and hall-b routed to them, prints at 0.10 a side."""
    installation = printing_setup.installation
    set_config(installation, {"agents.lease-secs": "2", "agents.max-attempts": "2"})
    with installation.db.transaction() as session:
        token_a = registry.add_agent(session, "site-a", hasher=installation.hasher)
        token_b = registry.add_agent(session, "site-b", hasher=installation.hasher)
    server = LiveServer(installation).start()
    a = FakeAgent(server.url, "site-a", token_a)
    b = FakeAgent(server.url, "site-b", token_b)
    with CupsClient(printing_setup.cups.server) as client:
        capture = next(p for p in client.list_printers_sync() if p.name == "capture")
    markers = [{"name": "black", "type": "toner", "level": 80}]
    for agent in (a, b):
        answer = agent.post("/printers", {"printers": [printer_to_wire(capture, markers)]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"printers": [f"{agent.name}/capture"]}
    printing_setup.set_cost("site-a/capture", "0.10")
    printing_setup.set_cost("site-b/capture", "0.10")
    with installation.db.transaction() as session:
        queues.add_queue(session, "hall-a", printer="site-a/capture")
        queues.add_queue(session, "hall-b", printer="site-b/capture")
    try:
        yield Site(printing_setup, server, a, b)
    finally:
        server.stop()


def test_a_remote_job_is_charged_once_claimed_once_fetched_and_completed(site: Site) -> None:
    setup = site.setup
    job_id = site.print_on("hall-a")
    assert setup.balance() == Decimal("9.80")
    time.sleep(0.6)  # the tracker must leave a remote job alone (it would fail a local one)
    job = site.job(job_id)
    assert (job.state, job.agent_id is not None, job.attempts) == ("queued", True, 0)
    assert site.b.next() is None  # not site-b's printer
    claimed = site.a.next()
    assert claimed is not None
    assert (claimed["id"], claimed["printer"], claimed["user"]) == (job_id, "capture", "janet")
    assert claimed["attempt"] == 1
    assert site.a.next() is None  # never handed out twice
    pdf = site.a.get(f"/jobs/{job_id}/pdf", claim=claimed["claim"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert site.a.report(claimed, "processing", cups_job_id=7).status_code == 200
    assert site.a.post(f"/jobs/{job_id}/renew", {"claim": claimed["claim"]}).status_code == 200
    done = site.a.report(claimed, "completed", cups_job_id=7, impressions=2)
    assert done.json() == {"job": job_id, "state": "completed"}
    job = site.job(job_id)
    assert (job.state, job.cups_job_id, job.impressions, job.refund_trx_id) == (
        "completed",
        7,
        2,
        None,
    )
    assert setup.balance() == Decimal("9.80")
    assert site.a.report(claimed, "failed").status_code == 409  # ended: nothing changes


def test_a_waiting_long_poll_is_answered_when_the_job_arrives(site: Site) -> None:
    got: dict[str, object] = {}

    def poll() -> None:
        started = time.monotonic()
        got["job"] = site.a.next(wait=20)
        got["at"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)
    sent = time.monotonic()
    job_id = site.print_on("hall-a")
    poller.join(30)
    job = got["job"]
    assert isinstance(job, dict) and job["id"] == job_id
    # Answered well before the 20 s wait ended: within a second of the upload's answer.
    assert float(got["at"]) < (time.monotonic() - sent) + 1.0 + 1.0


def test_wrong_or_missing_token_is_401_and_claims_nothing(site: Site) -> None:
    job_id = site.print_on("hall-a")
    wrong = FakeAgent(site.server.url, "site-a", site.b.token)
    for answer in (
        wrong.get("/jobs/next"),
        FakeAgent(site.server.url, "nobody", site.a.token).get("/jobs/next"),
        httpx.get(f"{site.server.url}/restful/v1/agent/jobs/next"),
        wrong.post("/printers", {"printers": []}),
    ):
        assert answer.status_code == 401, answer.text
    assert site.job(job_id).attempts == 0


def test_another_agents_job_is_404(site: Site) -> None:
    job_id = site.print_on("hall-a")
    claimed = site.a.next()
    assert claimed is not None
    claim = claimed["claim"]
    assert site.b.get(f"/jobs/{job_id}/pdf", claim=claim).status_code == 404
    assert site.b.post(f"/jobs/{job_id}/renew", {"claim": claim}).status_code == 404
    assert site.b.report(claimed, "completed").status_code == 404
    assert site.job(job_id).state == "queued"


def test_failed_attempts_requeue_then_fail_and_refund(site: Site) -> None:
    job_id = site.print_on("hall-a")
    first = site.a.next()
    assert first is not None
    assert site.a.report(first, "failed", message="paper jam").json()["state"] == "queued"
    assert site.setup.balance() == Decimal("9.80")
    second = site.a.next()
    assert second is not None and second["attempt"] == 2
    assert site.a.report(first, "completed").status_code == 409  # the old claim is dead
    assert site.a.report(second, "aborted", message="paper jam").json()["state"] == "aborted"
    job = site.job(job_id)
    assert job.state == "aborted" and "paper jam" in job.message and job.refund_trx_id is not None
    assert site.setup.balance() == Decimal("10.00")


def test_a_lapsed_lease_makes_the_job_fetchable_until_attempts_run_out(site: Site) -> None:
    job_id = site.print_on("hall-a")
    assert site.a.next() is not None
    assert site.a.next() is None
    again = site.a.next(wait=5)  # the 2 s lease lapses during the wait
    assert again is not None and again["attempt"] == 2
    # Attempts used up: the sweeper fails the job once this lease lapses too.
    job = wait_until(lambda: site.job(job_id) if site.job(job_id).state == "failed" else None, 8)
    assert "2 attempt" in job.message and job.refund_trx_id is not None
    assert site.setup.balance() == Decimal("10.00")


def test_removing_an_agent_fails_and_refunds_its_jobs_and_revokes_it(site: Site) -> None:
    waiting = site.print_on("hall-a")
    claimed_id = site.print_on("hall-a")
    site.print_on("hall-b")
    claimed = site.a.next()
    assert claimed is not None and claimed["id"] == waiting  # oldest first
    assert site.setup.balance() == Decimal("9.40")
    with site.setup.installation.db.transaction() as session:
        assert registry.remove_agent(session, "site-a") == 2
    assert site.setup.balance() == Decimal("9.80")
    for job_id in (waiting, claimed_id):
        job = site.job(job_id)
        assert job.state == "failed" and "no printer" in job.message
    assert site.a.get("/jobs/next").status_code == 401
    with site.setup.installation.db.read() as session:
        printer = session.query(Printer).filter_by(name="site-a/capture").one()
        assert not printer.present
    answer = upload(site.server.url, site.setup.auth, "a.pdf", pdf_bytes(1), queue="hall-a")
    assert answer.status_code == 409, answer.text


def test_bad_printer_lists_are_refused_naming_the_field(site: Site) -> None:
    for body, field in (
        ({"printers": [{"name": "x"}]}, "accepting"),
        ({"printer": []}, "printers"),
        ({"printers": "x"}, "printers"),
    ):
        answer = site.a.post("/printers", body)
        assert answer.status_code == 400, answer.text
        assert field in answer.text
    with site.setup.installation.db.read() as session:
        names = [p.name for p in session.query(Printer).filter(Printer.agent_id.is_not(None))]
    assert sorted(names) == ["site-a/capture", "site-b/capture"]


def test_polls_racing_for_one_job_hand_it_out_once(site: Site) -> None:
    # A lease longer than the polls: a second claim could only be a race lost twice.
    set_config_live(site.setup.installation, {"agents.lease-secs": "60"})
    got: list[dict | None] = []
    lock = threading.Lock()

    def poll() -> None:
        job = site.a.next(wait=4)
        with lock:
            got.append(job)

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for poller in pollers:
        poller.start()
    time.sleep(0.5)
    job_id = site.print_on("hall-a")
    for poller in pollers:
        poller.join(30)
    won = [job for job in got if job is not None]
    assert len(got) == 4 and [job["id"] for job in won] == [job_id]
    assert site.job(job_id).attempts == 1


def test_off_loopback_the_agent_api_needs_tls_before_the_token_is_read(site: Site) -> None:
    set_config_live(site.setup.installation, {"server.trusted-proxies": "127.0.0.1/32"})
    remote = {"X-Forwarded-For": "192.0.2.10"}
    job_id = site.print_on("hall-a")
    plain = httpx.get(
        f"{site.server.url}/restful/v1/agent/jobs/next", headers={**site.a.headers, **remote}
    )
    assert plain.status_code == 403 and "https" in plain.text
    assert site.job(job_id).attempts == 0
    secure = httpx.get(
        f"{site.server.url}/restful/v1/agent/jobs/next",
        headers={**site.a.headers, **remote, "X-Forwarded-Proto": "https"},
        params={"wait": 0},
    )
    assert secure.status_code == 200 and secure.json()["job"]["id"] == job_id


def test_printer_list_and_metrics_show_remote_printers_and_their_agents(
    site: Site, process_env: Environment
) -> None:
    assert site.a.next() is None  # site-a calls; site-b has not called since registering
    with site.setup.installation.db.transaction() as session:
        session.execute(
            update(Agent)
            .where(Agent.name == "site-b")
            .values(last_contact_at=utcnow() - timedelta(minutes=5))
        )
    result = CliRunner().invoke(main, ["printer", "list"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    assert "agent site-a (online)" in rows["site-a/capture"]
    assert "agent site-b (offline)" in rows["site-b/capture"]
    assert "local CUPS" in rows["capture"]
    shown = CliRunner().invoke(main, ["printer", "show", "site-a/capture"])
    assert shown.exit_code == 0, shown.output
    assert "agent site-a (online)" in shown.output and "black toner 80%" in shown.output
    text = httpx.get(f"{site.server.url}/metrics", auth=ADMIN).text
    assert 'printsrv_agent_online{agent="site-a"} 1.0' in text
    assert 'printsrv_agent_online{agent="site-b"} 0.0' in text
    assert 'printer="site-b/capture"' in text and 'agent_online="no"' in text


def test_a_held_document_is_released_to_a_remote_printer(site: Site) -> None:
    held = upload(site.server.url, site.setup.auth, "held.pdf", pdf_bytes(1))
    assert held.status_code == 200 and held.json()["status"] == "held", held.text
    document_id = held.json()["id"]
    released = httpx.post(
        f"{site.server.url}/restful/v1/documents/{document_id}/print",
        auth=site.setup.auth,
        data={"printer": "site-b/capture", "ipp_options": '{"copies": "3"}'},
    )
    assert released.status_code == 200, released.text
    claimed = site.b.next()
    assert claimed is not None and claimed["options"]["copies"] == "3"
    assert site.setup.balance() == Decimal("9.70")


def test_an_approved_print_for_a_remote_printer_waits_for_its_agent(site: Site) -> None:
    """A print rule held it; the approval charges it and queues it for the agent, never for
    the central CUPS (which has no such printer)."""
    from printsrv.printing import rules

    setup = site.setup
    rules.add_rule(
        setup.installation.db, name="hold-all", scope="all", condition="pages>0", action="hold"
    )
    answer = upload(site.server.url, setup.auth, "a.pdf", pdf_bytes(2), queue="hall-a")
    assert answer.status_code == 200, answer.text
    held = answer.json()
    assert held["status"] == "waiting" and setup.jobs() == []
    approved = httpx.post(
        f"{site.server.url}/restful/v1/documents/{held['id']}/approve", auth=ADMIN, timeout=30
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    (job,) = setup.jobs()
    time.sleep(0.6)  # the tracker must leave it alone, as any remote job
    job = site.job(job.id)
    assert (job.state, job.agent_id is not None, job.cups_job_id) == ("queued", True, None)
    assert setup.balance() == Decimal("9.80")
    claimed = site.a.next()
    assert claimed is not None and claimed["id"] == job.id
    assert site.a.report(claimed, "completed", cups_job_id=3, impressions=2).status_code == 200
    assert site.job(job.id).state == "completed"


def test_one_poll_claims_up_to_max_jobs_each_with_its_own_claim(site: Site) -> None:
    first, second, third = (site.print_on("hall-a") for _ in range(3))
    answer = site.a.get("/jobs/next", wait=0, max=2)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [job["id"] for job in body["jobs"]] == [first, second]  # oldest first
    assert body["job"] == body["jobs"][0]  # what an agent from before batches reads
    assert len({job["claim"] for job in body["jobs"]}) == 2
    assert "pdf_base64" not in body["jobs"][0]  # not asked for
    rest = site.a.get("/jobs/next", wait=0, max=16, inline=1 << 20).json()["jobs"]
    assert [job["id"] for job in rest] == [third]  # never handed out twice
    pdf = base64.b64decode(rest[0]["pdf_base64"])  # a small PDF comes with its claim
    assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == rest[0]["pdf_sha256"]
    assert site.a.get("/jobs/next", wait=0, max=17).status_code == 400
    assert site.a.get("/jobs/next", wait=0, inline=(1 << 20) + 1).status_code == 400
    assert site.a.next() is None  # the one-job poll of earlier agents still answers
    for job_id in (first, second, third):
        assert site.job(job_id).attempts == 1


def test_reports_in_one_batch_are_each_applied_or_refused_as_if_sent_alone(site: Site) -> None:
    job_a, job_b = site.print_on("hall-a"), site.print_on("hall-a")
    other = site.print_on("hall-b")
    claimed = site.a.get("/jobs/next", wait=0, max=2).json()["jobs"]
    foreign = site.b.next()
    assert foreign is not None and foreign["id"] == other
    answer = site.a.post(
        "/jobs/states",
        {
            "reports": [
                {"job": job_a, "claim": claimed[0]["claim"], "state": "completed",
                 "cups_job_id": 5, "impressions": 2},
                {"job": job_b, "claim": "1.2.stale", "state": "completed"},
                {"job": other, "claim": foreign["claim"], "state": "completed"},
            ]
        },
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert results[0] == {"job": job_a, "state": "completed"}
    assert (results[1]["job"], results[1]["status"]) == (job_b, 409)
    assert (results[2]["job"], results[2]["status"]) == (other, 404)  # not site-a's job
    assert (site.job(job_a).state, site.job(job_a).impressions) == ("completed", 2)
    assert site.job(job_b).state == "queued" and site.job(other).state == "queued"
    twice = {"job": job_b, "claim": claimed[1]["claim"], "state": "completed"}
    assert site.a.post("/jobs/states", {"reports": [twice, twice]}).status_code == 400
    assert site.job(job_b).state == "queued"  # a malformed batch applies nothing


def test_a_remote_job_cancelled_at_the_centre_is_refunded_once_and_its_claim_dies(
    site: Site, process_env: Environment
) -> None:
    waiting = site.print_on("hall-a")
    held = site.print_on("hall-a")
    assert site.setup.balance() == Decimal("9.60")
    cancelled = CliRunner().invoke(main, ["agent", "cancel", str(waiting)])
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.strip() == f"job {waiting} cancelled and refunded"
    claimed = site.a.next()
    assert claimed is not None and claimed["id"] == held  # the cancelled one is not handed out
    assert site.a.report(claimed, "processing", cups_job_id=9).status_code == 200
    cancelled = CliRunner().invoke(main, ["agent", "cancel", str(held)])
    assert cancelled.exit_code == 0, cancelled.output
    assert "agent 'site-a' cancels it at its next call" in cancelled.output
    assert site.setup.balance() == Decimal("10.00")
    # The agent is told at its next renewal or report: the job has ended.
    assert site.a.post(f"/jobs/{held}/renew", {"claim": claimed["claim"]}).status_code == 409
    assert site.a.report(claimed, "completed", impressions=2).status_code == 409
    again = CliRunner().invoke(main, ["agent", "cancel", str(held)])
    assert again.exit_code == 1 and "has ended" in again.output
    for job_id in (waiting, held):
        job = site.job(job_id)
        assert job.state == "canceled" and job.refund_trx_id is not None
    assert site.setup.balance() == Decimal("10.00")  # refunded once each
    unknown = CliRunner().invoke(main, ["agent", "cancel", "999999"])
    assert unknown.exit_code == 1 and "no remote print job" in unknown.output


def test_an_agent_silent_for_three_polls_shows_offline_and_system_status_stays_ready(
    site: Site, process_env: Environment
) -> None:
    set_config_live(
        site.setup.installation,
        {
            "agents.poll-secs": "1",
            "api.jsonrpc.secret-key": JSONRPC_KEY,
            "api.jsonrpc.ext.ip-addresses-allowed": "127.0.0.1/32",
        },
    )

    def status() -> str:
        answer = jsonrpc_call(site.server, STATUS).json()
        return str(answer["result"]["data"]["value"]) if answer.get("result") else ""

    def shown(agent: str) -> str:
        result = CliRunner().invoke(main, ["printer", "list"])
        assert result.exit_code == 0, result.output
        rows = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
        return rows[f"{agent}/capture"]

    def metrics() -> str:
        return httpx.get(f"{site.server.url}/metrics", auth=ADMIN).text

    # The server has the new settings (a busy machine may take longer than one refresh).
    wait_until(lambda: status() == "READY", timeout=15, interval=0.2)
    site.a.next()
    site.b.next()
    assert "agent site-b (online)" in shown("site-b")
    assert 'printsrv_agent_online{agent="site-b"} 1.0' in metrics()
    # site-b says nothing more; site-a keeps calling. 3 x poll-secs later site-b is offline.
    silent_since = time.monotonic()
    while time.monotonic() - silent_since < 3.5:
        site.a.next()
        time.sleep(0.5)
    assert "agent site-b (offline)" in shown("site-b")
    assert "agent site-a (online)" in shown("site-a")
    site.a.next()
    text = metrics()
    assert 'printsrv_agent_online{agent="site-b"} 0.0' in text
    assert 'printsrv_agent_online{agent="site-a"} 1.0' in text
    assert status() == "READY"  # an offline agent is the printers' matter, not the system's
