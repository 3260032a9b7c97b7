"""Print agent figures: jobs per second through one agent next to `lp` on the agent's own
cupsd, and the central server's cost of 200 idle agents long-polling.

    .venv/bin/python -m bench.agents [--jobs 60] [--clients 8] [--rounds 3]
        [--previous CHECKOUT] [--agents 200] [--database URL]

1. Throughput: ``--jobs`` one-page PDFs uploaded by ``--clients`` concurrent clients to a
   central printsrv queue routed to a remote printer, printed by one `printsrv agent run`
   on its site's private cupsd (a ``file:`` printer, Generic PDF PPD); against ``lp``
   submitting the same files to the same site queue with the same concurrency, in the same
   run. Both are timed from the first request until the site's CUPS has completed every
   job (and, for the agent, the central server has every job's report; target: the agent
   at least 0.5 of lp). ``--rounds`` alternate lp and the agent, so a neighbour's load falls
   on both alike; the ratio is the median of the rounds' own ratios. With ``--previous``
   (a checkout of an earlier release, e.g. a `git worktree` of the last tag) that release's
   agent runs too, against this server, in each round: the same-run before/after, and a
   check that the older agent still works.
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
import resource
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
    lp_many,
    one_page_pdf,
    purge_jobs,
    wait_completed,
)

sys.path.insert(0, str(ROOT / "tests"))

from printsrv.agents import registry
from printsrv.agents.models import Agent
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment
from printsrv.platform.models import utcnow
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


def _agent(
    url: str, token_file: Path, cups_server: str, state_dir: Path, tree: Path | None
) -> subprocess.Popen[bytes]:
    """`printsrv agent run` from this checkout, or from ``tree`` (another release's)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return subprocess.Popen(
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
            cups_server,
            "--state-dir",
            str(state_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tree or ROOT,
        env=env,
    )


def _stop(agent: subprocess.Popen[bytes]) -> None:
    agent.terminate()
    try:
        agent.wait(20)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def throughput(
    work: Path,
    database_url: str,
    jobs: int,
    clients: int,
    rounds: int = 3,
    previous: Path | None = None,
) -> list[Row]:
    """Figure 1: ``rounds`` rounds, each `lp` then the agent (then, with ``previous``, the
    agent of that checkout against this server), so a neighbour's load falls on all of
    them alike; each round's ratio is to that round's `lp`."""
    pdf_path = one_page_pdf(work / "one.pdf")
    pdf = pdf_path.read_bytes()
    installation, credential = _installation(work / "home-throughput", database_url)
    with installation.db.transaction() as session:
        token = registry.add_agent(session, "site", hasher=installation.hasher)
    token_file = work / "site.token"
    token_file.write_text(token)
    auth = ("bench", credential)
    variants: list[tuple[str, Path | None]] = [("agent", None)]
    if previous is not None:
        variants.append(("previous agent", previous))
    rates: dict[str, list[float]] = {"lp": [], **{name: [] for name, _ in variants}}
    # CPU milliseconds per job, by process: on a busy machine a steadier figure than rates.
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in rates}
    uploads: list[float] = []
    failures = lp_failures = 0
    reported = 0
    with (
        bench_cups(work / "site-out.pdf") as cups,
        printsrv_server(work / "home-throughput", database_url) as server,
    ):
        url = f"http://127.0.0.1:{server.port}"
        agent = _agent(url, token_file, cups.server, work / "state", None)
        try:
            deadline = time.monotonic() + 30
            while True:
                with installation.db.read() as session:
                    if session.query(Printer).filter_by(name=f"site/{QUEUE}").count():
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the agent did not register its printer")
                time.sleep(0.1)
        finally:
            _stop(agent)
        with installation.db.transaction() as session:
            queues.add_queue(session, "remote", printer=f"site/{QUEUE}")
        cupsd = cups._proc.pid  # type: ignore[union-attr]  # its CPU, for the table
        assert server.process is not None
        central = server.process.pid

        def spent(name: str, part: str, seconds: float) -> None:
            cpu[name].setdefault(part, []).append(seconds * 1000 / jobs)

        for _round in range(rounds):
            purge_jobs(cups)
            cups_before, lp_before = _cpu_total(cupsd), _children_cpu()
            started = time.perf_counter()
            lp_failures += lp_many(cups, pdf_path, jobs, clients)
            wait_completed(cups, jobs)
            rates["lp"].append(jobs / (time.perf_counter() - started))
            spent("lp", "cupsd", _cpu_total(cupsd) - cups_before)
            spent("lp", "lp", _children_cpu() - lp_before)
            for name, tree in variants:
                purge_jobs(cups)
                time.sleep(1.2)  # past the last agent's contact (written once a second)
                agent = _agent(url, token_file, cups.server, work / f"state-{name}", tree)
                try:
                    _wait_polling(installation)
                    before = (_cpu_total(cupsd), _cpu_total(central), _cpu_total(agent.pid))
                    started = time.perf_counter()
                    failures += asyncio.run(_upload_many(url, auth, pdf, "remote", jobs, clients))
                    uploads.append(jobs / (time.perf_counter() - started))
                    wait_completed(cups, jobs)
                    reported += jobs
                    _wait_reported(installation, reported)
                    rates[name].append(jobs / (time.perf_counter() - started))
                    after = (_cpu_total(cupsd), _cpu_total(central), _cpu_total(agent.pid))
                    for part, was, now in zip(
                        ("cupsd", "server", "agent"), before, after, strict=True
                    ):
                        spent(name, part, now - was)
                finally:
                    _stop(agent)
    rows: list[Row] = []
    for name, _tree in variants:
        ratios = [ours / base for ours, base in zip(rates[name], rates["lp"], strict=True)]
        rows.append(
            (
                f"jobs/s through one {name}, {jobs} jobs x {rounds} rounds, {clients} clients"
                + (" (>= 0.5 of lp)" if name == "agent" else ""),
                f"{statistics.median(rates[name]):.1f}",
                f"lp {statistics.median(rates['lp']):.1f}",
                f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})",
            )
        )
    for name in rates:
        parts = ", ".join(
            f"{part} {statistics.median(values):.0f}" for part, values in cpu[name].items()
        )
        rows.append((f"CPU ms per job, {name} (median of rounds)", parts, "-", "-"))
    rows += [
        ("refused uploads / failed lp", str(failures), str(lp_failures), "-"),
        (
            "uploads alone, jobs/s (the central server's share)",
            f"{statistics.median(uploads):.1f}",
            "-",
            "-",
        ),
    ]
    return rows


def _cpu_total(pid: int) -> float:
    """CPU seconds of a process and of its children it has waited for (cupsd's filters)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the lp commands)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wait_polling(installation: Installation, timeout: float = 30) -> None:
    """Until the agent just started has called the central server (its poll is open)."""
    since = utcnow()
    deadline = time.monotonic() + timeout
    while True:
        with installation.db.read() as session:
            contact = session.scalar(select(Agent.last_contact_at).where(Agent.name == "site"))
        if contact is not None and contact >= since:
            time.sleep(0.5)  # past its registration, into its first poll
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the agent did not call the central server")
        time.sleep(0.05)


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
    rounds: int = 3,
    previous: Path | None = None,
    agents: int = 200,
    idle_secs: float = 10.0,
    pickups: int = 5,
    database: str = PG_URL,
) -> list[Row]:
    """Every figure of this benchmark, as rows (``database``: a PostgreSQL URL, or
    "sqlite" for the embedded default; ``previous``: a checkout whose agent is measured
    too, against this server)."""
    with tempfile.TemporaryDirectory(prefix="printsrv-bench-agents-", dir="/tmp") as directory:
        work = Path(directory)
        os.chmod(work, 0o755)  # noqa: S103 - a root cupsd's filters run as lp
        with private_schema(database, "agents_throughput") as url:
            if not url.startswith("postgresql"):
                url = f"sqlite:///{work / 'throughput.db'}"
            rows = throughput(work, url, jobs, clients, rounds, previous)
        with private_schema(database, "agents_idle") as url:
            if not url.startswith("postgresql"):
                url = f"sqlite:///{work / 'idle.db'}"
            rows += idle_agents(work, url, agents, idle_secs, pickups)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="a checkout of an earlier release: its agent is measured too, against this server",
    )
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--idle-secs", type=float, default=10.0)
    parser.add_argument("--pickups", type=int, default=5)
    parser.add_argument("--database", default=PG_URL, help='a PostgreSQL URL, or "sqlite"')
    args = parser.parse_args()
    rows = figures(
        jobs=args.jobs,
        clients=args.clients,
        rounds=args.rounds,
        previous=args.previous,
        agents=args.agents,
        idle_secs=args.idle_secs,
        pickups=args.pickups,
        database=args.database,
    )
    print_table(TITLE, rows)


if __name__ == "__main__":
    main()
