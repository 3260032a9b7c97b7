"""The job runner: every server process runs one (started in the app's lifespan).

It claims queued jobs (and jobs whose runner died: their lease ran out) up to
`api.jobs.max-parallel` at once, runs each on a work thread (`threads.in_thread`: never on
the event loop) and, while it runs, renews its lease and writes its progress every
`tick` seconds. A renewal that fails means the job was cancelled or another runner took it
over: the work is told to stop at its next progress report, and nothing it made is
stored (`service.finish_job` is fenced by the lease too). Finished results are stored in
the database; expired ones are purged now and then.

The work itself runs in a child process (`worker.py`) at a lower scheduling priority,
which a work thread starts and reads the progress of: a long PDF layout in the server's own
process would hold the interpreter lock the requests need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Final

from printsrv.errors import InvalidInput, NotFound, PrintsrvError
from printsrv.jobs import service
from printsrv.jobs.service import Claim, ResultFile
from printsrv.jobs.types import JOB_TYPES, JobStopped, JobTimedOut
from printsrv.operations.installation import Installation
from printsrv.platform.notifications import Topic, wait_for_change
from printsrv.platform.threads import in_thread

log = logging.getLogger(__name__)

__all__ = ["JobRunner", "run_job_runner"]

INTERVAL: Final = 0.1
IDLE_INTERVAL: Final = 0.25
# While the notification listener hears every new job, an idle runner sleeps until a
# running job's lease may run out, or this long at most.
HEARD_POLL_INTERVAL: Final = 5.0
PURGE_EVERY: Final = 30.0
SHUTDOWN_WAIT: Final = 10.0


class _Progress:
    """The latest percentage a job reported, and the flag that stops it."""

    def __init__(self) -> None:
        self.percent = 0
        self.stop = threading.Event()

    def report(self, percent: int) -> None:
        if self.stop.is_set():
            raise JobStopped("the runner no longer holds this job")
        self.percent = max(self.percent, min(99, int(percent)))


class JobRunner:
    """Runs the jobs of one installation in this process.

    `owner` names this runner in the leases it takes (host, pid and a random part).
    `step()` claims and starts what it can; tests drive it, `run()` loops on it.
    """

    def __init__(self, installation: Installation, *, owner: str | None = None) -> None:
        self.installation = installation
        self.owner = owner or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.running: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, _Progress] = {}

    def __repr__(self) -> str:
        return f"JobRunner({self.owner!r})"

    def _settings(self) -> tuple[int, int, int]:
        snapshot = self.installation.config.snapshot()
        return (
            snapshot["api.jobs.lease-secs"],
            snapshot["api.jobs.result-ttl-secs"],
            snapshot["api.jobs.max-parallel"],
        )

    async def step(self) -> int:
        """Claim as many jobs as there are free places and start them; how many started."""
        lease, _, most = self._settings()
        free = most - len(self.running)
        if free <= 0:
            return 0
        claims = await in_thread(
            service.claim_jobs, self.installation.db, self.owner, lease_secs=lease, limit=free
        )
        for claim in claims:
            task = asyncio.create_task(self._run(claim), name=f"job {claim.key}")
            self.running[claim.key] = task
            task.add_done_callback(lambda _t, key=claim.key: self.running.pop(key, None))
        return len(claims)

    async def _run(self, claim: Claim) -> None:
        lease, ttl, _ = self._settings()
        progress = _Progress()
        self._progress[claim.key] = progress
        workdir = Path(tempfile.mkdtemp(prefix="printsrv-job-"))
        db = self.installation.db
        work = asyncio.ensure_future(in_thread(self._execute, claim, progress, workdir))
        try:
            # Renewed three times per lease at least, and often enough to show progress.
            tick = min(1.0, lease / 3)
            held = True
            while True:
                done, _ = await asyncio.wait({work}, timeout=tick)
                if done:
                    break
                held = await in_thread(
                    service.renew_lease, db, claim, progress=progress.percent, lease_secs=lease
                )
                if not held:
                    log.info("job %s: lease lost or cancelled; stopping it", claim.key)
                    progress.stop.set()
            try:
                files = await work
            except JobStopped:
                return
            except JobTimedOut as error:
                await self._fail(claim, service.TIMEOUT, error.message, ttl)
                return
            except (InvalidInput, NotFound) as error:
                await self._fail(claim, service.INPUT_UNREADABLE, error.message, ttl)
                return
            except PrintsrvError as error:
                await self._fail(claim, service.GENERATION_FAILED, error.message, ttl)
                return
            except Exception:
                log.exception("job %s (%s) failed", claim.key, claim.job_type)
                message = "The job failed; the server log has the details"
                await self._fail(claim, service.UNKNOWN, message, ttl)
                return
            if not held:
                return
            await self._store(claim, files, ttl)
        except asyncio.CancelledError:
            # The server is stopping: the work was told to stop; hand the job back so
            # another server runs it now rather than after the lease.
            progress.stop.set()
            with contextlib.suppress(Exception):
                await in_thread(service.release_job, db, claim)
            # Its thread stops at its next progress report; wait a little for it, so that
            # it holds no connection when the pool is closed.
            await asyncio.wait({work}, timeout=SHUTDOWN_WAIT)
            raise
        finally:
            self._progress.pop(claim.key, None)
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, claim: Claim, progress: _Progress, workdir: Path) -> list[ResultFile]:
        """Run the job in a child process; its progress lines feed `progress`, whose stop
        flag kills it. Raises what the job raised, as its kind of error."""
        if claim.job_type not in JOB_TYPES:
            raise InvalidInput(f"This server does not know jobs of type {claim.job_type!r}")
        log.info("job %s (%s) started, attempt %d", claim.key, claim.job_type, claim.attempt)
        env = self.installation.env
        child_env = {
            **os.environ,
            "PRINTSRV_HOME": str(env.home),
            "PRINTSRV_DATABASE_URL": env.database_url,
        }
        if env.secret_key:
            child_env["PRINTSRV_SECRET_KEY"] = env.secret_key
        request = {
            "job_type": claim.job_type,
            "argument": claim.argument,
            "owner": [claim.owner.kind, claim.owner.user_id, claim.owner.name],
            "workdir": str(workdir),
        }
        last = ""
        # Leaving the block closes the pipes and waits for the child.
        with subprocess.Popen(
            [sys.executable, "-m", "printsrv.jobs.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env,
        ) as child:
            assert child.stdin is not None and child.stdout is not None
            try:
                child.stdin.write(json.dumps(request).encode())
                child.stdin.close()
                with selectors.DefaultSelector() as watch:
                    watch.register(child.stdout, selectors.EVENT_READ)
                    while True:
                        if progress.stop.is_set():
                            raise JobStopped("the runner no longer holds this job")
                        if not watch.select(timeout=0.25):
                            continue
                        line = child.stdout.readline().decode("utf-8", "replace").strip()
                        if not line:
                            break
                        kind, _, payload = line.partition(" ")
                        if kind == "progress":
                            progress.report(int(payload))
                        else:
                            last = line
            finally:
                if child.poll() is None and (progress.stop.is_set() or not last):
                    child.kill()
            status = child.wait()
        return _outcome(last, status)

    async def _store(self, claim: Claim, files: list[ResultFile], ttl: int) -> None:
        try:
            stored = await in_thread(
                service.finish_job, self.installation.db, claim, files, ttl_secs=ttl
            )
        except Exception:
            log.exception("job %s: storing its results failed", claim.key)
            await self._fail(claim, service.STORAGE_FAILED, "The results could not be stored", ttl)
            return
        if stored:
            log.info("job %s (%s) done", claim.key, claim.job_type)
        else:
            log.info("job %s: another runner holds it now; its results are not stored", claim.key)

    async def _fail(self, claim: Claim, code: int, message: str, ttl: int) -> None:
        try:
            await in_thread(
                service.fail_job, self.installation.db, claim, code, message, ttl_secs=ttl
            )
        except Exception:
            # The lease runs out and another runner tries again.
            log.exception("job %s: recording its failure failed", claim.key)

    async def purge(self) -> int:
        _, ttl, _ = self._settings()
        return await in_thread(service.purge_expired, self.installation.db, ttl_secs=ttl)

    async def drain(self) -> None:
        """Wait for every job this runner has started (tests)."""
        while self.running:
            await asyncio.gather(*list(self.running.values()), return_exceptions=True)

    async def run(self) -> None:
        """Claim and run jobs until cancelled; errors are logged and the loop goes on."""
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + 1.0
        failing = False
        listener = self.installation.notifications
        wake, unsubscribe = listener.wake_on((Topic.JOBS,)) if listener.possible else (None, None)
        try:
            while True:
                busy = False
                pause = IDLE_INTERVAL
                if wake is not None:
                    wake.clear()  # before claiming: a job announced meanwhile wakes us again
                try:
                    if loop.time() >= next_purge:
                        next_purge = loop.time() + PURGE_EVERY
                        await self.purge()
                    busy = bool(await self.step())
                    if not busy and not self.running and listener.listening:
                        until_purge = next_purge - loop.time()
                        pause = await in_thread(
                            service.seconds_until_claimable,
                            self.installation.db,
                            at_most=max(INTERVAL, min(HEARD_POLL_INTERVAL, until_purge)),
                        )
                    if failing:
                        log.warning("job runner working again")
                    failing = False
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if not failing:
                        log.exception("job runner round failed; retrying")
                    failing = True
                if busy:
                    await asyncio.sleep(INTERVAL)
                elif self.running:
                    await asyncio.sleep(IDLE_INTERVAL)  # a free place may open any moment
                else:
                    await wait_for_change(wake, listener, IDLE_INTERVAL, pause, failing)
        finally:
            if unsubscribe is not None:
                unsubscribe()
            tasks = list(self.running.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _outcome(last: str, status: int) -> list[ResultFile]:
    """The files a worker's last line names, or its error raised as the runner maps them."""
    kind, _, payload = last.partition(" ")
    if kind == "result":
        return [ResultFile(name, media, Path(path)) for name, media, path in json.loads(payload)]
    if kind != "error":
        raise RuntimeError(f"the job's process ended with status {status} and no answer")
    error = json.loads(payload)
    message = str(error.get("message", ""))
    if error.get("kind") == "timeout":
        raise JobTimedOut(message)
    if error.get("kind") == "input":
        raise InvalidInput(message)
    if error.get("kind") == "generation":
        raise PrintsrvError(message)
    raise RuntimeError(message)


async def run_job_runner(installation: Installation) -> None:
    """Run a job runner for `installation` until cancelled (the app's lifespan starts it)."""
    await JobRunner(installation).run()
