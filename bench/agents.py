"""Print agent figures: jobs per second through one agent next to `lp` on the agent's own
cupsd, and the central server's cost of 200 idle agents long-polling.

    .venv/bin/python -m bench.agents [--jobs 60] [--clients 8] [--agents 200] [--database URL]

1. Throughput: ``--jobs`` one-page PDFs uploaded by ``--clients`` concurrent clients to a
   central printsrv queue routed to a remote printer, printed by one `printsrv agent run`
   on its site's private cupsd (a ``file:`` printer, Generic PDF PPD); against ``lp``
   submitting the same files to the same site queue with the same concurrency, in the same
   run. Both are timed from the first request until the site's CUPS has completed every
   job (and, for the agent, the central server has every job's report; target: the agent
   at least 0.5 of lp).
2. Idle agents: ``--agents`` agents, simulated in this process (one coroutine each, one
   long-poll open at a time, as the real agent), against one server process for
   ``--idle-secs`` seconds: the server's CPU seconds per second and its open connections.
3. Pick-up: a job for one of the idle agents, timed from sending its upload until that
   agent's poll returns it (the upload's own work included; target: under 1 s), several
   times.

Everything runs on loopback against processes this script starts and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bench.common import PG_URL, ROOT, SECRET, Row, print_table, printsrv_server, private_schema
from bench.printing import (
    QUEUE,
    bench_cups,
    completed_jobs,
    lp_many,
    one_page_pdf,
    purge_jobs,
    wait_completed,
)

sys.path.insert(0, str(ROOT / "tests"))

from printsrv.agents import registry
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment
from printsrv.printing import queues
from printsrv.printing.models import Printer, PrintJob
from printsrv.printing.printers import ANY_PRINTER

TITLE = "Print agents: jobs/s through one agent vs lp; 200 idle agents; pick-up latency"


def _installation(home: Path, database_url: str) -> tuple[Installation, str]:
    installation = open_installation(
        Environment(home=home, database_url=database_url, secret_key=SECRET)
    )
    upgrade_schema(installation.db)
    with installation.db.transaction() as session:
        config.set_property(
            session, "agents.poll-secs", "30", hasher=installation.hasher, actor="bench"
        )
        users.add_user(session, "bench")
        credential = users.issue_uuid(session, "bench", hasher=installation.hasher)
    return installation, credential


async def _upload_many(
    url: str, auth: tuple[str, str], pdf: bytes, queue: str, jobs: int, clients: int
) -> int:
    counter = iter(range(jobs))
    failures = 0

    async def client() -> None:
        nonlocal failures
        async with httpx.AsyncClient(timeout=60) as http:
            for index in counter:
                answer = await http.post(
                    f"{url}/restful/v1/documents/print",
                    auth=auth,
                    files={"file": (f"page-{index}.pdf", pdf, "application/pdf")},
                    data={"queue": queue},
                )
                if answer.status_code != 200 or answer.json()["status"] != "printing":
                    failures += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return failures


def throughput(work: Path, database_url: str, jobs: int, clients: int) -> list[Row]:
    """Figure 1."""
    pdf_path = one_page_pdf(work / "one.pdf")
    pdf = pdf_path.read_bytes()
    installation, credential = _installation(work / "home-throughput", database_url)
    with installation.db.transaction() as session:
        token = registry.add_agent(session, "site", hasher=installation.hasher)
    token_file = work / "site.token"
    token_file.write_text(token)
    auth = ("bench", credential)
    with (
        bench_cups(work / "site-out.pdf") as cups,
        printsrv_server(work / "home-throughput", database_url) as server,
    ):
        url = f"http://127.0.0.1:{server.port}"
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "printsrv",
                "agent",
                "run",
                "--server",
                url,
                "--name",
                "site",
                "--token-file",
                str(token_file),
                "--cups",
                cups.server,
                "--state-dir",
                str(work / "state"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                with installation.db.read() as session:
                    if session.query(Printer).filter_by(name=f"site/{QUEUE}").count():
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the agent did not register its printer")
                time.sleep(0.1)
            with installation.db.transaction() as session:
                queues.add_queue(session, "remote", printer=f"site/{QUEUE}")
            started = time.perf_counter()
            failures = asyncio.run(_upload_many(url, auth, pdf, "remote", jobs, clients))
            uploaded = time.perf_counter() - started
            wait_completed(cups, jobs)
            _wait_reported(installation, jobs)
            ours = jobs / (time.perf_counter() - started)
            purge_jobs(cups)
            started = time.perf_counter()
            lp_failures = lp_many(cups, pdf_path, jobs, clients)
            wait_completed(cups, jobs)
            base = jobs / (time.perf_counter() - started)
            leftover = completed_jobs(cups)
        finally:
            agent.terminate()
            agent.wait(20)
    return [
        (
            f"jobs/s through one agent, {jobs} jobs, {clients} clients (>= 0.5 of lp)",
            f"{ours:.1f}",
            f"lp {base:.1f}",
            f"{ours / base:.2f}",
        ),
        ("refused uploads / failed lp", str(failures), str(lp_failures), f"({leftover} done)"),
        ("uploads alone, jobs/s (the central server's share)", f"{jobs / uploaded:.1f}", "-", "-"),
    ]


def _wait_reported(installation: Installation, jobs: int, timeout: float = 300) -> None:
    """Until the central server has every remote job completed (the agent reported it)."""
    deadline = time.monotonic() + timeout
    while True:
        with installation.db.read() as session:
            done = session.scalar(
                select(func.count()).where(
                    PrintJob.agent_id.is_not(None), PrintJob.state == "completed"
                )
            )
        if done is not None and done >= jobs:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {jobs} remote jobs reported completed")
        time.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _open_connections(port: int) -> int:
    """Established TCP connections to the server's port (from the server's side)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return len([line for line in out.splitlines() if line.strip()])


async def _idle_agents(
    url: str,
    tokens: dict[str, str],
    seconds: float,
    pid: int,
    port: int,
    auth: tuple[str, str],
    pdf: bytes,
    pickups: int,
) -> tuple[float, int, list[float], int]:
    limits = httpx.Limits(
        max_connections=len(tokens) + 20, max_keepalive_connections=len(tokens) + 20
    )
    got: dict[str, asyncio.Queue[tuple[int, float]]] = {name: asyncio.Queue() for name in tokens}
    polls = 0
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        def headers(name: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[name]}", "Printsrv-Agent": name}

        async def agent(name: str) -> None:
            nonlocal polls
            while not stop.is_set():
                answer = await http.get(
                    f"{url}/restful/v1/agent/jobs/next", params={"wait": 30}, headers=headers(name)
                )
                polls += 1
                job = answer.json()["job"]
                if job is not None:
                    got[name].put_nowait((job["id"], time.perf_counter()))
                    await http.post(
                        f"{url}/restful/v1/agent/jobs/{job['id']}/state",
                        headers=headers(name),
                        json={"claim": job["claim"], "state": "completed", "impressions": 1},
                    )

        tasks = [asyncio.create_task(agent(name)) for name in tokens]
        await asyncio.sleep(2)  # every poll open
        before = _cpu_seconds(pid)
        started = time.perf_counter()
        connections = 0
        while time.perf_counter() - started < seconds:
            await asyncio.sleep(1)
            connections = max(connections, _open_connections(port))
        cpu = (_cpu_seconds(pid) - before) / (time.perf_counter() - started)
        latencies = []
        names = sorted(tokens)
        for n in range(pickups):
            name = names[(n * 37) % len(names)]
            # Timed from sending the upload: the poll may answer before the upload's own
            # answer is read, so this includes the upload's checks, charge and commit.
            sent = time.perf_counter()
            answer = await http.post(
                f"{url}/restful/v1/documents/print",
                auth=auth,
                files={"file": ("p.pdf", pdf, "application/pdf")},
                data={"queue": f"q-{name}"},
            )
            answer.raise_for_status()
            _job, at = await asyncio.wait_for(got[name].get(), 30)
            latencies.append(at - sent)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return cpu, connections, latencies, polls


def idle_agents(
    work: Path, database_url: str, agents: int, seconds: float, pickups: int
) -> list[Row]:
    """Figures 2 and 3."""
    home = work / "home-idle"
    installation, credential = _installation(home, database_url)
    tokens = {}
    with installation.db.transaction() as session:
        for n in range(agents):
            tokens[f"a{n:03d}"] = registry.add_agent(
                session, f"a{n:03d}", hasher=installation.hasher
            )
    auth = ("bench", credential)
    pdf = one_page_pdf(work / "pickup.pdf").read_bytes()
    with printsrv_server(home, database_url) as server:
        assert server.process is not None
        url = f"http://127.0.0.1:{server.port}"
        pid = server.process.pid
        # Each agent registers its printer "p"; a queue routes to each.
        asyncio.run(_register_only(url, tokens))
        with installation.db.transaction() as session:
            for name in tokens:
                queues.add_queue(session, f"q-{name}", printer=f"{name}/p")
        cpu, connections, latencies, polls = asyncio.run(
            _idle_agents(url, tokens, seconds, pid, server.port, auth, pdf, pickups)
        )
    return [
        (
            f"{agents} idle agents: server CPU s/s over {seconds:.0f} s",
            f"{cpu:.3f}",
            "-",
            f"{polls} polls answered",
        ),
        (f"{agents} idle agents: open connections", str(connections), f"{agents} expected", "-"),
        (
            "pick-up by an idle agent from upload sent, median / max s (< 1 s)",
            f"{statistics.median(latencies):.3f} / {max(latencies):.3f}",
            "-",
            f"{len(latencies)} jobs",
        ),
    ]


async def _register_only(url: str, tokens: dict[str, str]) -> None:
    printer = {
        **asdict(ANY_PRINTER),
        "name": "p",
        "media_supported": ["iso_a4_210x297mm"],
        "markers": [],
    }
    async with httpx.AsyncClient(timeout=60) as http:
        for name, token in tokens.items():
            answer = await http.post(
                f"{url}/restful/v1/agent/printers",
                headers={"Authorization": f"Bearer {token}", "Printsrv-Agent": name},
                json={"printers": [printer]},
            )
            answer.raise_for_status()


def figures(
    *,
    jobs: int = 60,
    clients: int = 8,
    agents: int = 200,
    idle_secs: float = 10.0,
    pickups: int = 5,
    database: str = PG_URL,
) -> list[Row]:
    """Every figure of this benchmark, as rows (``database``: a PostgreSQL URL, or
    "sqlite" for the embedded default)."""
    with tempfile.TemporaryDirectory(prefix="printsrv-bench-agents-", dir="/tmp") as directory:
        work = Path(directory)
        os.chmod(work, 0o755)  # noqa: S103 - a root cupsd's filters run as lp
        with private_schema(database, "agents_throughput") as url:
            if not url.startswith("postgresql"):
                url = f"sqlite:///{work / 'throughput.db'}"
            rows = throughput(work, url, jobs, clients)
        with private_schema(database, "agents_idle") as url:
            if not url.startswith("postgresql"):
                url = f"sqlite:///{work / 'idle.db'}"
            rows += idle_agents(work, url, agents, idle_secs, pickups)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--idle-secs", type=float, default=10.0)
    parser.add_argument("--pickups", type=int, default=5)
    parser.add_argument("--database", default=PG_URL, help='a PostgreSQL URL, or "sqlite"')
    args = parser.parse_args()
    rows = figures(
        jobs=args.jobs,
        clients=args.clients,
        agents=args.agents,
        idle_secs=args.idle_secs,
        pickups=args.pickups,
        database=args.database,
    )
    print_table(TITLE, rows)


if __name__ == "__main__":
    main()
