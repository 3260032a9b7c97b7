"""`printsrv agent run`: a site's agent, between the central server and the site's CUPS.

It needs no database; all it keeps is its journal (``journal.py``). On start it first
reconciles what the journal holds (a job already handed to CUPS is followed there, never
handed again), then registers its printers, and then, side by side:

- the **poll loop** long-polls the central server for a job, claims it, writes the
  journal, downloads the PDF and hands it to CUPS with the job's IPP options;
- one **follower** per job in CUPS asks CUPS how it is doing, renews the lease while CUPS
  works, and reports the end (kept in the journal until the central server takes it);
- the **printer watch** registers the printers again whenever CUPS' list changes (a new
  queue, a state, a marker level).

The central server being away only delays things: claims wait, results wait in the
journal. A 401 (the agent was removed, or the token is wrong) stops the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from printsrv.agents.client import (
    CentralServer,
    JobGone,
    ServerUnreachable,
    TokenRefused,
)
from printsrv.agents.journal import Entry, Journal, cups_job_name
from printsrv.agents.printers import printer_to_wire
from printsrv.platform.threads import in_thread
from printsrv.printing.cupsclient import CupsClient
from printsrv.printing.errors import CupsUnavailable, JobNotFound, PrintingError

log = logging.getLogger(__name__)

__all__ = ["Agent", "AgentSettings", "run_agent"]

T = TypeVar("T")

# CUPS is asked which jobs are still active in one request for all the jobs followed,
# every WATCH_TICK while any is; a job is looked at alone only once it has ended. A job
# that has been in CUPS a while is looked at less often: a quarter of its age, at most
# FOLLOW_MAX apart.
WATCH_TICK: Final = 0.2
FOLLOW_MAX: Final = 2.0
PRINTER_WATCH_INTERVAL: Final = 5.0
RETRY_INTERVAL: Final = 1.0
MAX_RETRY_INTERVAL: Final = 15.0
MAX_FETCHING: Final = 4  # jobs claimed and not yet in CUPS
MAX_IN_CUPS: Final = 64  # jobs in CUPS (or finished) and not yet reported


@dataclass(frozen=True)
class AgentSettings:
    """What `printsrv agent run` was given.

    Attributes:
        server: the central server's URL (https://print.example.edu).
        name: the agent's name.
        token: its token.
        cups: the site's CUPS server (host:port or a socket path).
        state_dir: where the journal and the spooled PDFs live.
        poll_secs: the long-poll's wait (the server caps it at its agents.poll-secs).
        renew_secs: how often a job in CUPS has its lease renewed.
        verify: TLS verification (True, or a CA bundle's path).
    """

    server: str
    name: str
    token: str
    cups: str
    state_dir: Path
    poll_secs: int = 30
    renew_secs: float = 20.0
    verify: bool | str = True

    def __repr__(self) -> str:
        return f"AgentSettings(server={self.server!r}, name={self.name!r}, token=[secure])"


class CupsWatch:
    """Which followed jobs CUPS still has active, for all followers in one request a tick
    (rather than one request per job per look)."""

    def __init__(self, cups: CupsClient) -> None:
        self.cups = cups
        self._waiting: list[tuple[int, asyncio.Future[bool | None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def ended(self, cups_job_id: int) -> bool | None:
        """At the next look (one that starts after this call): whether the job has left
        CUPS' active jobs (ended, or unknown to it); None when CUPS did not answer."""
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((cups_job_id, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._looks())
        return await future

    async def _looks(self) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            try:
                active: set[int] | None = await self.cups.active_jobs()
            except PrintingError as error:
                log.warning("cannot ask CUPS for its active jobs: %s", error)
                active = None
            for job_id, future in waiting:
                if not future.done():
                    future.set_result(None if active is None else job_id not in active)
            await asyncio.sleep(WATCH_TICK)

    def close(self) -> None:
        """Stop looking (the agent is stopping)."""
        if self._task is not None:
            self._task.cancel()


class Agent:
    """One running agent (see the module docstring)."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.central = CentralServer(
            settings.server, settings.name, settings.token, verify=settings.verify
        )
        self.cups = CupsClient(settings.cups, max_workers=4)
        self.watch = CupsWatch(self.cups)
        self.journal = Journal(settings.state_dir)
        self.followers: dict[int, asyncio.Task[None]] = {}
        # CUPS is a queue of its own: only jobs on their way to it limit what is claimed
        # next; jobs in it are bounded separately, far higher.
        self.fetching = asyncio.Semaphore(MAX_FETCHING)
        self.printing = asyncio.Semaphore(MAX_IN_CUPS)
        self.takers: set[asyncio.Task[None]] = set()
        self._registered: list[dict[str, Any]] | None = None
        # Seconds between renewals: settings.renew_secs, or a third of the lease the
        # server grants when that is shorter (learnt from each claim); a job cancelled at
        # the centre is noticed at its next renewal.
        self.renew_every = settings.renew_secs
        # Set with TokenRefused by a follower: the whole agent stops.
        self.refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"Agent({self.settings.name!r}, jobs={sorted(self.journal.entries)})"

    # --- talking to the central server, patiently ----------------------------------------

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until the central server answers (JobGone and TokenRefused pass)."""
        delay = RETRY_INTERVAL
        warned = False
        while True:
            try:
                result = await call()
                if warned:
                    log.info("central server answers again (%s)", what)
                return result
            except ServerUnreachable as error:
                if not warned:
                    log.warning("central server unreachable (%s): %s; retrying", what, error)
                    warned = True
            await asyncio.sleep(delay)
            delay = min(MAX_RETRY_INTERVAL, delay * 2)

    async def _report(self, entry: Entry, state: str, **more: Any) -> None:
        """Report until the central server takes it; forget the job if it is gone."""
        try:
            await self._patiently(
                f"report job {entry.job_id} {state}",
                lambda: self.central.report(entry.job_id, entry.claim, state, **more),
            )
        except JobGone as error:
            log.warning(
                "job %s: the central server no longer has it for us: %s", entry.job_id, error
            )
            if entry.stage == "in_cups" and entry.cups_job_id is not None:
                with contextlib.suppress(PrintingError):
                    await self.cups.cancel(entry.cups_job_id)
            await in_thread(self.journal.forget, entry.job_id)

    # --- printers -------------------------------------------------------------------------

    async def _printers(self) -> list[dict[str, Any]]:
        infos = await self.cups.list_printers()
        wire = []
        for info in infos:
            try:
                markers = await self.cups.markers(info.name)
            except PrintingError:
                markers = []
            wire.append(printer_to_wire(info, markers))
        return wire

    async def register_printers(self) -> None:
        """Register the CUPS printers if they changed since the last registration."""
        printers = await self._printers()
        if printers == self._registered:
            return
        names = await self._patiently("register printers", lambda: self.central.register(printers))
        self._registered = printers
        log.info("registered %d printer(s): %s", len(names), ", ".join(names) or "none")

    async def watch_printers(self) -> None:
        while True:
            await asyncio.sleep(PRINTER_WATCH_INTERVAL)
            try:
                await self.register_printers()
            except CupsUnavailable as error:
                log.warning("cannot read the printers from CUPS: %s", error)

    # --- one job ----------------------------------------------------------------------------

    async def follow(self, entry: Entry) -> None:
        """Follow a job in CUPS to its end, renewing the lease; then report the end."""
        try:
            await self._follow(entry)
        except TokenRefused as error:
            self._refuse(error)
        finally:
            self.followers.pop(entry.job_id, None)
            self.printing.release()

    def _refuse(self, error: TokenRefused) -> None:
        if not self.refused.done():
            self.refused.set_exception(error)

    async def _follow(self, entry: Entry) -> None:
        if entry.stage == "in_cups":
            await self._follow_in_cups(entry)
            if entry.job_id not in self.journal.entries:
                return
        if entry.stage == "done" and entry.result is not None:
            try:
                await self.central.report(entry.job_id, entry.claim, **entry.result)
            except ServerUnreachable:
                # Kept on disk until the central server is back: CUPS may forget the job
                # meanwhile, and the result must survive a restart of the agent too.
                await in_thread(self.journal.put, entry)
                await self._report(entry, **entry.result)
            except JobGone as error:
                log.warning("job %s: the central server no longer has it: %s", entry.job_id, error)
            await in_thread(self.journal.forget, entry.job_id)

    async def _follow_in_cups(self, entry: Entry) -> None:
        """Watch the job in CUPS until it ends. "processing" is reported once CUPS is seen
        working on it (a job CUPS finishes by the first look is reported finished at once:
        one report fewer for the central server per quick job)."""
        assert entry.cups_job_id is not None
        renewed = started = time.monotonic()
        processing_reported = False
        while True:
            ended = await self.watch.ended(entry.cups_job_id)
            status = None
            if ended:
                try:
                    status = await self.cups.job_state(entry.cups_job_id)
                except JobNotFound:
                    entry.result = {
                        "state": "failed",
                        "cups_job_id": entry.cups_job_id,
                        "message": f"CUPS no longer knows job {entry.cups_job_id}",
                    }
                    break
                except PrintingError as error:
                    log.warning("job %s: cannot ask CUPS: %s", entry.job_id, error)
            if status is not None and status.final:
                result: dict[str, Any] = {"state": status.state, "cups_job_id": entry.cups_job_id}
                if status.state == "completed":
                    result["impressions"] = status.impressions
                else:
                    result["message"] = status.message or status.state
                entry.result = result
                break
            if not processing_reported:
                await self._report(entry, "processing", cups_job_id=entry.cups_job_id)
                if entry.job_id not in self.journal.entries:
                    return  # the central server has let the job go (and CUPS cancelled it)
                processing_reported = True
                renewed = time.monotonic()
            if time.monotonic() - renewed >= self.renew_every:
                try:
                    await self.central.renew(entry.job_id, entry.claim)
                    renewed = time.monotonic()
                except ServerUnreachable:
                    pass  # the result will be reported when the server is back
                except JobGone:
                    log.warning(
                        "job %s was taken back by the central server; cancelling", entry.job_id
                    )
                    with contextlib.suppress(PrintingError):
                        await self.cups.cancel(entry.cups_job_id)
                    await in_thread(self.journal.forget, entry.job_id)
                    return
            age = time.monotonic() - started
            # Looks come every WATCH_TICK anyway; an older job skips some of them.
            await asyncio.sleep(min(FOLLOW_MAX, age / 4))
        # Written only if the report cannot be delivered at once (``_follow``): until then
        # CUPS' own job history answers for it after a restart.
        entry.stage = "done"

    def _start_following(self, entry: Entry) -> None:
        """Follow ``entry`` in a task of its own; the caller holds a ``printing`` slot,
        which the follower gives back when the job is reported."""
        self.followers[entry.job_id] = asyncio.create_task(self.follow(entry))

    async def _give_back(self, entry: Entry, why: str) -> None:
        """Return a job unprinted (another attempt may follow)."""
        await self._report(entry, "released", message=why)
        await in_thread(self.journal.forget, entry.job_id)

    def _learn_lease(self, jobs: list[dict[str, Any]]) -> None:
        """Renew at least three times a lease (a clock ahead of the server's only makes
        renewals more frequent; never less frequent than ``settings.renew_secs``)."""
        for job in jobs:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                left = datetime.fromisoformat(job["lease_until"]) - datetime.now(UTC)
                self.renew_every = min(self.settings.renew_secs, max(1.0, left.total_seconds() / 3))

    @staticmethod
    def _entry(job: dict[str, Any]) -> Entry:
        return Entry(
            job_id=int(job["id"]),
            claim=str(job["claim"]),
            printer=str(job["printer"]),
            title=str(job["title"]),
            user=str(job["user"]),
            options={str(k): str(v) for k, v in dict(job["options"]).items()},
            pdf_sha256=str(job["pdf_sha256"]),
        )

    async def take(self, entry: Entry, job: dict[str, Any]) -> None:
        """A job just claimed and journaled (the caller holds a ``fetching`` slot, released
        here once the job is in CUPS): fetch its PDF (unless it came with the claim), hand
        it to CUPS, follow it."""
        try:
            await self._take(entry, job)
        except TokenRefused as error:
            self._refuse(error)
        except Exception:
            # One job's surprise must not stop the agent; its claim lapses (another attempt).
            log.exception("job %s: unexpected failure", entry.job_id)
        finally:
            self.fetching.release()

    async def _take(self, entry: Entry, job: dict[str, Any]) -> None:
        pdf = self.journal.pdf_path(entry.job_id)
        if not await in_thread(self.central.inlined, job, pdf, entry.pdf_sha256):
            try:
                await self._patiently(
                    f"download job {entry.job_id}",
                    lambda: self.central.download(entry.job_id, entry.claim, pdf, entry.pdf_sha256),
                )
            except JobGone:
                await in_thread(self.journal.forget, entry.job_id)
                return
        await self.printing.acquire()
        try:
            await self._hand_to_cups(entry)
        except BaseException:
            self.printing.release()
            raise

    async def _hand_to_cups(self, entry: Entry) -> None:
        pdf = self.journal.pdf_path(entry.job_id)
        delay = RETRY_INTERVAL
        while True:
            entry.stage = "handing"
            await in_thread(self.journal.put, entry)  # before CUPS may have it
            try:
                cups_id = await self.cups.submit(
                    entry.printer,
                    pdf,
                    cups_job_name(entry.job_id, entry.title),
                    entry.options,
                    entry.user,
                )
                break
            except CupsUnavailable as error:
                # CUPS may have taken it before failing to answer: look before retrying.
                found = await self._in_cups(entry)
                if found is not None:
                    cups_id = found
                    break
                log.warning("job %s: CUPS unavailable (%s); retrying", entry.job_id, error)
                await asyncio.sleep(delay)
                delay = min(MAX_RETRY_INTERVAL, delay * 2)
            except PrintingError as error:
                entry.stage = "done"
                entry.result = {"state": "failed", "message": error.message}
                await in_thread(self.journal.put, entry)
                self._start_following(entry)
                return
        entry.stage = "in_cups"
        entry.cups_job_id = cups_id
        await in_thread(self.journal.put, entry)
        log.info("job %s is CUPS job %s on %s", entry.job_id, cups_id, entry.printer)
        self._start_following(entry)

    async def _in_cups(self, entry: Entry) -> int | None:
        """The CUPS job of a central job, looked up by its name; None when CUPS has none."""
        try:
            found = await self.cups.jobs_named(cups_job_name(entry.job_id, ""))
        except PrintingError:
            return None
        return found[-1] if found else None

    # --- start and the poll loop ----------------------------------------------------------

    async def reconcile(self) -> None:
        """Settle what the journal holds from before a restart, before fetching anything."""
        for entry in sorted(self.journal.entries.values(), key=lambda e: e.job_id):
            if entry.stage == "handing":
                while True:
                    try:
                        found = await self.cups.jobs_named(cups_job_name(entry.job_id, ""))
                        break
                    except CupsUnavailable as error:
                        log.warning("reconcile: CUPS unavailable (%s); retrying", error)
                        await asyncio.sleep(RETRY_INTERVAL)
                if found:
                    entry.stage, entry.cups_job_id = "in_cups", found[-1]
                    await in_thread(self.journal.put, entry)
                else:
                    entry.stage = "claimed"
            if entry.stage == "claimed":
                log.info("reconcile: job %s never reached CUPS; giving it back", entry.job_id)
                await self._give_back(entry, "the agent restarted before printing it")
                continue
            log.info("reconcile: following job %s (%s)", entry.job_id, entry.stage)
            await self.printing.acquire()
            self._start_following(entry)

    async def poll(self) -> None:
        """Long-poll for jobs, as many at once as there are free ``fetching`` slots; each
        claimed job is taken in a task of its own, so the next poll is open while the last
        jobs download."""
        while True:
            await self.fetching.acquire()
            slots = 1
            while slots < MAX_FETCHING and not self.fetching.locked():
                await self.fetching.acquire()  # free: returns at once
                slots += 1
            try:
                jobs = await self._patiently(
                    "poll", lambda n=slots: self.central.next_jobs(self.settings.poll_secs, n)
                )
            except BaseException:
                for _ in range(slots):
                    self.fetching.release()
                raise
            for _ in range(slots - len(jobs)):
                self.fetching.release()
            self._learn_lease(jobs)
            fresh: list[tuple[Entry, dict[str, Any]]] = []
            entries = []
            for job in jobs:
                log.info(
                    "claimed job %s for %s (attempt %s)", job["id"], job["printer"], job["attempt"]
                )
                held = self.journal.entries.get(int(job["id"]))
                if held is not None:
                    # Its lease lapsed while this agent still had it on its way (CUPS away
                    # that long): the new claim replaces the old one on the job we hold,
                    # never a second take of it (which could print it twice).
                    log.warning("job %s claimed again while still held; keeping one", held.job_id)
                    held.claim = str(job["claim"])
                    entries.append(held)
                    self.fetching.release()
                    continue
                entry = self._entry(job)
                entries.append(entry)
                fresh.append((entry, job))
            # The batch's claims are journaled together, before any of them is fetched.
            if entries:
                await in_thread(self.journal.put_many, entries)
            for entry, job in fresh:
                task = asyncio.create_task(self.take(entry, job))
                self.takers.add(task)
                task.add_done_callback(self.takers.discard)

    async def run(self) -> None:
        """Reconcile, register, then poll, follow and watch until cancelled or refused."""
        tasks: list[asyncio.Future[None]] = []
        try:
            await self.reconcile()
            try:
                await self.register_printers()
            except CupsUnavailable as error:
                log.warning("cannot read the printers from CUPS yet: %s", error)
            tasks = [
                asyncio.ensure_future(self.poll()),
                asyncio.ensure_future(self.watch_printers()),
                self.refused,
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises what stopped the agent
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in [*self.takers, *self.followers.values()]:
                task.cancel()
            await asyncio.gather(*self.takers, *self.followers.values(), return_exceptions=True)
            await self.central.close()
            self.watch.close()
            self.cups.close()


async def run_agent(settings: AgentSettings) -> None:
    """Run an agent until cancelled; raises ``TokenRefused`` when the server refuses it."""
    await Agent(settings).run()
