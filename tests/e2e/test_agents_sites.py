"""Two sites, each with a real `printsrv agent run` and its own private cupsd, and one
central `printsrv serve`, all on loopback: prints go through each agent; an agent killed
with SIGKILL (its job in CUPS, or not yet) prints the job exactly once after a restart; a
central server that stops mid-job gets the agent's report when it is back; failures are
refunded; a removed agent is refused and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cupsd import FAIL_MESSAGE, PrivateCups
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    set_config_live,
    upload,
)
from support import (
    TEST_SECRET,
    ServeProcess,
    free_port,
    set_config,
    wait_until,
)
from web_support import release_in_browser

from printsrv.agents import registry
from printsrv.cli import main
from printsrv.people import users
from printsrv.platform.environment import Environment
from printsrv.printing import queues
from printsrv.printing.cupsclient import CupsClient
from printsrv.printing.models import Printer, PrintJob
from printsrv.web.views import RELEASE_DONE

FINISH = 40.0
PASSWORD = "release-password"


class AgentProcess:
    """`python -m printsrv agent run` for one site."""

    def __init__(
        self, name: str, token_file: Path, cups: PrivateCups, state_dir: Path, log: Path
    ) -> None:
        self.name = name
        self.args = [
            sys.executable, "-m", "printsrv", "agent", "run",
            "--name", name, "--token-file", str(token_file), "--cups", cups.server,
            "--state-dir", str(state_dir), "--poll-secs", "5",
        ]  # fmt: skip
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, server_url: str) -> AgentProcess:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [*self.args, "--server", server_url], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None:
            self.log.close()
            self.process = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Sites:
    setup: PrintSetup
    central: ServeProcess
    cups: dict[str, PrivateCups]
    agents: dict[str, AgentProcess]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.central.port}"

    def print_on(self, queue: str, pages: int = 2) -> int:
        answer = upload(self.url, self.setup.auth, "notes.pdf", pdf_bytes(pages), queue=queue)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "printing", answer.text
        return self.setup.jobs()[-1].id

    def job(self, job_id: int) -> PrintJob:
        with self.setup.installation.db.read() as session:
            job = session.get(PrintJob, job_id)
            assert job is not None
            return job

    def wait_job(self, job_id: int, states: tuple[str, ...], timeout: float = FINISH) -> PrintJob:
        def reached() -> PrintJob | None:
            job = self.job(job_id)
            return job if job.state in states else None

        try:
            return wait_until(reached, timeout=timeout, interval=0.1)
        except AssertionError:
            job = self.job(job_id)
            logs = "\n".join(f"--- {n}:\n{a.output()[-3000:]}" for n, a in self.agents.items())
            raise AssertionError(f"job {job_id} is {job.state} ({job.message}):\n{logs}") from None

    def printed(self, site: str) -> list[Path]:
        """What the site's capture queue `hall` wrote: one .prn per job printed."""
        directory = self.cups[site].capture_dir("hall")
        return sorted(directory.glob("*.prn")) if directory.exists() else []


def _serve(setup: PrintSetup, port: int, log: Path) -> ServeProcess:
    env = {
        "PRINTSRV_HOME": str(setup.installation.env.home),
        "PRINTSRV_DATABASE_URL": setup.installation.env.database_url,
        "PRINTSRV_SECRET_KEY": TEST_SECRET,
    }
    return ServeProcess(env, "--no-access-log", port=port, log=log).start()


@pytest.fixture
def sites(printing_setup: PrintSetup, tmp_path: Path) -> Iterator[Sites]:  # noqa: F811
    """Central server; sites a and b, each a private cupsd with a capture queue `hall` (and b
    a failing queue `broken`) and a running agent; queues hall-a, hall-b and broken-b."""
    setup = printing_setup
    installation = setup.installation
    set_config(installation, {"agents.poll-secs": "5", "agents.max-attempts": "3"})
    cups = {site: PrivateCups(prefix=f"printsrv-agent-{site}-").start() for site in ("a", "b")}
    agents: dict[str, AgentProcess] = {}
    central = _serve(setup, free_port(), tmp_path / "central.log")
    try:
        cups["a"].add_queue("hall", "capture")
        cups["b"].add_queue("hall", "capture")
        cups["b"].add_queue("broken", "fail", exit_code=1)
        for site in ("a", "b"):
            with installation.db.transaction() as session:
                token = registry.add_agent(session, f"site-{site}", hasher=installation.hasher)
            token_file = tmp_path / f"site-{site}.token"
            token_file.write_text(token + "\n")
            agents[site] = AgentProcess(
                f"site-{site}",
                token_file,
                cups[site],
                tmp_path / f"state-{site}",
                tmp_path / f"agent-{site}.log",
            ).start(f"http://127.0.0.1:{central.port}")

        def registered() -> bool:
            with installation.db.read() as session:
                names = {p.name for p in session.query(Printer).filter(Printer.present.is_(True))}
            return {"site-a/hall", "site-b/hall", "site-b/broken"} <= names

        wait_until(registered, timeout=20, interval=0.1)
        with installation.db.transaction() as session:
            for queue, printer in (
                ("hall-a", "site-a/hall"),
                ("hall-b", "site-b/hall"),
                ("broken-b", "site-b/broken"),
            ):
                queues.add_queue(session, queue, printer=printer)
        for printer in ("site-a/hall", "site-b/hall", "site-b/broken"):
            setup.set_cost(printer, "0.10")
        running = Sites(setup, central, cups, agents)
        yield running
        central = running.central  # a test may have started another one
    finally:
        for agent in agents.values():
            agent.stop()
        central.stop()
        for server in cups.values():
            server.close()


def test_each_site_prints_its_own_jobs_with_their_options(sites: Sites) -> None:
    a = sites.print_on("hall-a")
    answer = upload(sites.url, sites.setup.auth, "b.pdf", pdf_bytes(3), queue="hall-b",
                    ipp_options='{"copies": "2"}')  # fmt: skip
    assert answer.status_code == 200, answer.text
    b = sites.setup.jobs()[-1].id
    for job_id in (a, b):
        job = sites.wait_job(job_id, ("completed",))
        assert job.attempts == 1 and job.cups_job_id is not None
    assert len(sites.printed("a")) == 1 and len(sites.printed("b")) == 1
    env_b = sites.cups["b"].read_env("hall", sites.job(b).cups_job_id or 0)
    assert env_b["COPIES"] == "2" and env_b["USER"] == "janet"
    assert sites.setup.balance() == Decimal("10.00") - Decimal("0.20") - Decimal("0.60")


def test_an_agent_killed_while_cups_has_the_job_reports_it_once_after_restart(sites: Sites) -> None:
    sites.cups["a"].set_enabled("hall", False)  # CUPS keeps the job pending
    job_id = sites.print_on("hall-a")
    sites.wait_job(job_id, ("submitted",))
    sites.agents["a"].kill()
    sites.cups["a"].set_enabled("hall", True)
    wait_until(lambda: sites.printed("a"), timeout=FINISH)
    sites.agents["a"].start(sites.url)
    job = sites.wait_job(job_id, ("completed",))
    time.sleep(2)  # a second print would have shown by now
    assert len(sites.printed("a")) == 1
    assert job.attempts == 1 and job.impressions is not None
    assert sites.setup.balance() == Decimal("9.80")


def test_an_agent_killed_before_cups_took_the_job_prints_it_once_on_another_attempt(
    sites: Sites,
) -> None:
    sites.cups["a"].stop()  # the agent claims and downloads, then cannot hand it over
    job_id = sites.print_on("hall-a")
    wait_until(lambda: "CUPS unavailable" in sites.agents["a"].output(), timeout=FINISH)
    assert sites.job(job_id).attempts == 1
    sites.agents["a"].kill()
    sites.cups["a"].start()
    sites.agents["a"].start(sites.url)
    job = sites.wait_job(job_id, ("completed",))
    assert job.attempts == 2
    time.sleep(2)
    assert len(sites.printed("a")) == 1
    assert sites.setup.balance() == Decimal("9.80")


def test_the_agent_keeps_its_result_while_the_central_server_is_away(
    sites: Sites, tmp_path: Path
) -> None:
    sites.cups["a"].set_enabled("hall", False)
    job_id = sites.print_on("hall-a")
    sites.wait_job(job_id, ("submitted",))
    port = sites.central.port
    sites.central.stop()
    sites.cups["a"].set_enabled("hall", True)
    wait_until(lambda: sites.printed("a"), timeout=FINISH)
    time.sleep(1.5)  # the agent now tries to report, and cannot
    assert sites.job(job_id).state == "submitted"
    sites.central = _serve(sites.setup, port, tmp_path / "central-again.log")
    job = sites.wait_job(job_id, ("completed",))
    assert len(sites.printed("a")) == 1 and job.attempts == 1
    assert sites.setup.balance() == Decimal("9.80")


def test_a_failing_printer_is_retried_then_failed_and_refunded(sites: Sites) -> None:
    job_id = sites.print_on("broken-b")
    job = sites.wait_job(job_id, ("failed", "aborted"))
    assert job.attempts == 3 and FAIL_MESSAGE in job.message
    assert job.refund_trx_id is not None
    assert sites.setup.balance() == Decimal("10.00")


def test_a_removed_agent_is_refused_stops_and_its_jobs_are_refunded(sites: Sites) -> None:
    sites.cups["a"].set_enabled("hall", False)
    job_id = sites.print_on("hall-a")
    sites.wait_job(job_id, ("submitted",))
    with sites.setup.installation.db.transaction() as session:
        assert registry.remove_agent(session, "site-a") == 1
    assert sites.job(job_id).state == "failed"
    assert sites.setup.balance() == Decimal("10.00")
    process = sites.agents["a"].process
    assert process is not None
    assert process.wait(30) != 0
    assert "refused" in sites.agents["a"].output()


def test_a_job_cancelled_at_the_centre_is_cancelled_on_the_site_cups_and_refunded_once(
    sites: Sites, process_env: Environment
) -> None:
    # A short lease: the agent renews every third of it, and hears of the cancel then.
    set_config_live(sites.setup.installation, {"agents.lease-secs": "6"})
    sites.cups["a"].set_enabled("hall", False)  # CUPS keeps the job pending
    job_id = sites.print_on("hall-a")
    job = sites.wait_job(job_id, ("submitted",))
    assert job.cups_job_id is not None
    assert sites.setup.balance() == Decimal("9.80")
    result = CliRunner().invoke(main, ["agent", "cancel", str(job_id)])
    assert result.exit_code == 0, result.output
    assert "agent 'site-a' cancels it at its next call" in result.output
    assert sites.setup.balance() == Decimal("10.00")
    with CupsClient(sites.cups["a"].server) as site_cups:
        state = wait_until(
            lambda: site_cups.job_state_sync(job.cups_job_id or 0).state == "canceled" or None,
            timeout=FINISH,
            interval=0.2,
        )
    assert state
    sites.cups["a"].set_enabled("hall", True)
    time.sleep(2)  # a print would have shown by now
    assert sites.printed("a") == []
    job = sites.job(job_id)
    assert job.state == "canceled" and job.refund_trx_id is not None
    assert sites.setup.balance() == Decimal("10.00")  # refunded once
    assert "cancelling" in sites.agents["a"].output()


def test_a_person_releases_a_held_document_to_a_remote_printer_in_the_browser(
    sites: Sites, chromium: Any
) -> None:
    """The user's page in a real Chromium offers the site's printer; the click charges the
    print once and the real agent prints it on the site's CUPS."""
    setup = sites.setup
    with setup.installation.db.transaction() as session:
        users.set_password(session, setup.user, PASSWORD)
    held = upload(sites.url, setup.auth, "Field notes.pdf", pdf_bytes(1))
    assert held.status_code == 200 and held.json()["status"] == "held", held.text
    notice = release_in_browser(
        chromium,
        sites.url,
        user=setup.user,
        password=PASSWORD,
        document_id=held.json()["id"],
        printer="site-a/hall",
        copies=2,
    )
    assert notice == RELEASE_DONE
    (job,) = setup.jobs()
    assert job.printer_name == "site-a/hall"
    job = sites.wait_job(job.id, ("completed",))
    assert job.attempts == 1 and len(sites.printed("a")) == 1
    assert sites.cups["a"].read_env("hall", job.cups_job_id or 0)["COPIES"] == "2"
    assert sites.printed("b") == []
    assert setup.balance() == Decimal("9.80")  # 1 page x 2 copies x 0.10, charged once
