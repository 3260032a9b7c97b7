"""The agent's side of the agent REST API (httpx), with the errors the runner acts on.

AgentClientError
├── TokenRefused         401: wrong or revoked token; the agent stops
├── ServerUnreachable    no answer, or 5xx: keep what we have, try again later
└── JobGone              404/409: the job is not ours (any more); forget it
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

import httpx

__all__ = ["AgentClientError", "CentralServer", "JobGone", "ServerUnreachable", "TokenRefused"]

TIMEOUT: Final = 30.0
POLL_MARGIN: Final = 15.0  # beyond the long-poll's own wait


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

    def __repr__(self) -> str:
        return f"CentralServer({self.base!r}, name={self.name!r}, token=[secure])"

    async def close(self) -> None:
        """Close the connections."""
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
        answer = await self._call(
            "GET", "/jobs/next", params={"wait": wait}, timeout=wait + POLL_MARGIN
        )
        job: dict[str, Any] | None = answer.json()["job"]
        return job

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
        """Report a job's state; return the central state it is in now."""
        body = {"claim": claim, "state": state, **{k: v for k, v in more.items() if v is not None}}
        answer = await self._call("POST", f"/jobs/{job_id}/state", json=body)
        central: str = answer.json()["state"]
        return central
