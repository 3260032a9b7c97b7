"""The agent's side of the agent REST API (httpx), with the errors the runner acts on.

Batches: a poll asks for up to ``max`` jobs, and reports made while another is on its way
travel together in one request (POST /agent/jobs/states). A central server from before
batches answers a poll with ``job`` alone and no ``jobs``; the client then polls and reports
one job at a time, as agents did before.

AgentClientError
├── TokenRefused         401: wrong or revoked token; the agent stops
├── ServerUnreachable    no answer, or 5xx: keep what we have, try again later
└── JobGone              404/409: the job is not ours (any more); forget it
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any, Final

import httpx

__all__ = ["AgentClientError", "CentralServer", "JobGone", "ServerUnreachable", "TokenRefused"]

TIMEOUT: Final = 30.0
POLL_MARGIN: Final = 15.0  # beyond the long-poll's own wait
MAX_REPORTS: Final = 64  # reports in one request (the server's limit)
INLINE_BYTES: Final = 256 * 1024  # PDFs up to this size come with their claim


class AgentClientError(Exception):
    """Base of what talking to the central server can end in."""


class TokenRefused(AgentClientError):
    """The central server refused the agent's name or token (401): removed, or wrong."""


class ServerUnreachable(AgentClientError):
    """The central server did not answer, or answered 5xx; try again later."""


class JobGone(AgentClientError):
    """The job is not this agent's, or this claim is no longer the job's (404, 409)."""


class CentralServer:
    """The central server as one agent sees it: ``url`` up to the host (and path prefix)."""

    def __init__(self, url: str, name: str, token: str, *, verify: bool | str = True) -> None:
        self.base = url.rstrip("/") + "/restful/v1/agent"
        self.name = name
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "Printsrv-Agent": name},
            timeout=TIMEOUT,
            verify=verify,
        )
        # Learnt from the first poll's answer: whether the server takes batches.
        self.batches = False
        self._pending: list[tuple[dict[str, Any], asyncio.Future[str]]] = []
        self._sender: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"CentralServer({self.base!r}, name={self.name!r}, token=[secure])"

    async def close(self) -> None:
        """Close the connections."""
        if self._sender is not None:
            self._sender.cancel()
        await self._client.aclose()

    async def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            answer = await self._client.request(method, self.base + path, **options)
        except httpx.HTTPError as error:
            raise ServerUnreachable(f"{method} {path}: {error!r}") from error
        return self._checked(answer, f"{method} {path}")

    @staticmethod
    def _checked(answer: httpx.Response, what: str) -> httpx.Response:
        if answer.status_code == 401:
            raise TokenRefused(f"{what}: {answer.text.strip()}")
        if answer.status_code in (404, 409):
            raise JobGone(f"{what}: {answer.text.strip()}")
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ServerUnreachable(f"{what}: {answer.status_code} {answer.text.strip()}")
        if answer.status_code != 200:
            raise AgentClientError(f"{what}: {answer.status_code} {answer.text.strip()}")
        return answer

    async def register(self, printers: list[dict[str, Any]]) -> list[str]:
        """Send the agent's printers; return their central names."""
        answer = await self._call("POST", "/printers", json={"printers": printers})
        names: list[str] = answer.json()["printers"]
        return names

    async def next_job(self, wait: int) -> dict[str, Any] | None:
        """The long-poll: a claimed job, or None when none came within ``wait`` seconds."""
        jobs = await self.next_jobs(wait, 1)
        return jobs[0] if jobs else None

    async def next_jobs(self, wait: int, most: int) -> list[dict[str, Any]]:
        """The long-poll: up to ``most`` claimed jobs ([] when none came within ``wait``
        seconds); one at most from a server that takes no batches."""
        # A server from before batches ignores max and inline (and answers one job).
        params = {"wait": wait, "max": most, "inline": INLINE_BYTES}
        answer = await self._call("GET", "/jobs/next", params=params, timeout=wait + POLL_MARGIN)
        body = answer.json()
        if "jobs" in body:
            self.batches = True
            jobs: list[dict[str, Any]] = body["jobs"]
            return jobs
        self.batches = False
        return [] if body["job"] is None else [body["job"]]

    @staticmethod
    def inlined(job: dict[str, Any], target: Path, sha256: str) -> bool:
        """Write the PDF that came with a claim (``pdf_base64``) to ``target`` if it did and
        is whole; False when there is none (download it). Blocking: a file is written."""
        text = job.get("pdf_base64")
        if not isinstance(text, str):
            return False
        try:
            pdf = base64.b64decode(text, validate=True)
        except ValueError:
            return False
        if hashlib.sha256(pdf).hexdigest() != sha256:
            return False
        partial = target.with_suffix(".part")
        partial.write_bytes(pdf)
        partial.replace(target)
        return True

    async def download(self, job_id: int, claim: str, target: Path, sha256: str) -> None:
        """Write the job's PDF to ``target``, checked against its digest."""
        digest = hashlib.sha256()
        partial = target.with_suffix(".part")
        try:
            async with self._client.stream(
                "GET", f"{self.base}/jobs/{job_id}/pdf", params={"claim": claim}
            ) as answer:
                if answer.status_code != 200:
                    await answer.aread()
                    self._checked(answer, f"GET /jobs/{job_id}/pdf")
                with partial.open("wb") as out:
                    async for chunk in answer.aiter_bytes():
                        digest.update(chunk)
                        out.write(chunk)
        except httpx.HTTPError as error:
            partial.unlink(missing_ok=True)
            raise ServerUnreachable(f"GET /jobs/{job_id}/pdf: {error!r}") from error
        if digest.hexdigest() != sha256:
            partial.unlink(missing_ok=True)
            raise ServerUnreachable(f"the PDF of job {job_id} arrived damaged (digest differs)")
        partial.replace(target)

    async def renew(self, job_id: int, claim: str) -> None:
        """Extend the lease on a job."""
        await self._call("POST", f"/jobs/{job_id}/renew", json={"claim": claim})

    async def report(self, job_id: int, claim: str, state: str, **more: Any) -> str:
        """Report a job's state; return the central state it is in now.

        With a server that takes batches, the report joins the others made meanwhile in
        one request; the errors are the same as for a report sent alone."""
        body = {"claim": claim, "state": state, **{k: v for k, v in more.items() if v is not None}}
        if not self.batches:
            answer = await self._call("POST", f"/jobs/{job_id}/state", json=body)
            central: str = answer.json()["state"]
            return central
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append(({"job": job_id, **body}, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_reports())
        return await done

    async def _send_reports(self) -> None:
        """Send what is pending, in batches, until nothing is: reports made while one batch
        is on its way go in the next."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_REPORTS], self._pending[MAX_REPORTS:]
            try:
                answer = await self._call(
                    "POST", "/jobs/states", json={"reports": [body for body, _ in batch]}
                )
                results = answer.json()["results"]
            except (AgentClientError, ValueError, KeyError) as error:
                failure = (
                    error
                    if isinstance(error, AgentClientError)
                    else ServerUnreachable(f"POST /jobs/states: unreadable answer ({error!r})")
                )
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                continue
            for (body, done), result in zip(batch, results, strict=False):
                if done.done():
                    continue
                status = result.get("status", 200)
                what = f"report job {body['job']}"
                if "state" in result:
                    done.set_result(result["state"])
                elif status in (404, 409):
                    done.set_exception(JobGone(f"{what}: {result.get('error', '')}"))
                else:
                    done.set_exception(
                        AgentClientError(f"{what}: {status} {result.get('error', '')}")
                    )
            for _, done in batch[len(results) :]:
                if not done.done():
                    done.set_exception(ServerUnreachable("POST /jobs/states: answer cut short"))
