"""The agents: add one (its token is shown once), list them, remove one, check a caller.

A token is 32 random bytes (URL-safe base64). Only its keyed hash is stored
(`SecretHasher.digest`), so neither the database nor a backup of it lets anyone act as an
agent; a caller's token is checked with `SecretHasher.matches` (constant time), and a wrong
agent name costs the same hash as a wrong token.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from printsrv.agents.models import Agent
from printsrv.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from printsrv.platform.models import utcnow
from printsrv.platform.security import SecretHasher
from printsrv.printing.jobs import OPEN_STATES, finish_job
from printsrv.printing.models import Printer, PrintJob

__all__ = [
    "AgentView",
    "add_agent",
    "authenticate_agent",
    "check_agent_name",
    "is_online",
    "list_agents",
    "online_by_id",
    "remove_agent",
]

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# An agent that has not called for this many poll intervals is offline.
OFFLINE_AFTER_POLLS: Final = 3
CONTACT_RESOLUTION: Final = timedelta(seconds=1)
# Hashed when the agent name is unknown, so the answer takes as long as for a wrong token.
_NO_DIGEST: Final = "hmac-sha256$" + "0" * 64


def check_agent_name(name: str) -> str:
    """The name, if it is 1-100 letters, digits, '.', '_' or '-' (starting with a letter or
    digit); InvalidInput otherwise. No '/': remote printers are named AGENT/PRINTER."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"Agent name {name!r} must be 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            reason="name",
        )
    return name


def _active(session: Session, name: str) -> Agent | None:
    return session.scalar(select(Agent).where(Agent.name == name, Agent.revoked_at.is_(None)))


def add_agent(session: Session, name: str, *, hasher: SecretHasher) -> str:
    """Create the agent ``name`` and return its token (the only time it is shown).

    A removed agent's name may be added again: it gets a new token and its printers come
    back when it registers them. Conflict when an agent of that name is active.
    """
    check_agent_name(name)
    token = secrets.token_urlsafe(32)
    row = session.scalar(select(Agent).where(Agent.name == name))
    if row is not None and row.revoked_at is None:
        raise Conflict(f"Agent '{name}' exists; `printsrv agent remove {name}` first")
    if row is None:
        row = Agent(name=name, token_digest=hasher.digest(token))
        session.add(row)
    else:
        row.token_digest = hasher.digest(token)
        row.revoked_at = None
        row.created_at = utcnow()
        row.last_contact_at = None
    session.flush()
    return token


def authenticate_agent(
    session: Session, name: str, token: str, *, hasher: SecretHasher, address: str
) -> Agent:
    """The active agent ``name`` whose token is ``token``, its last contact set to now.

    NotAuthenticated (401) for an unknown or removed agent or a wrong token, alike.
    """
    row = _active(session, name) if _NAME_RE.fullmatch(name or "") else None
    digest = row.token_digest if row is not None else _NO_DIGEST
    if not hasher.matches(token, digest) or row is None:
        raise NotAuthenticated("Wrong agent name or token, or the agent was removed")
    now = utcnow()
    # A job's requests come in bursts (claim, PDF, report): the contact is written at most
    # once a second, which is far finer than "online" needs.
    if row.last_contact_at is None or now - row.last_contact_at >= CONTACT_RESOLUTION:
        row.last_contact_at = now
    if row.last_address != address[:64]:
        row.last_address = address[:64]
    session.flush()
    return row


def is_online(last_contact_at: datetime | None, *, poll_secs: int, now: datetime) -> bool:
    """Whether an agent last seen at ``last_contact_at`` counts as online."""
    if last_contact_at is None:
        return False
    return now - last_contact_at <= timedelta(seconds=OFFLINE_AFTER_POLLS * poll_secs)


@dataclass(frozen=True)
class AgentView:
    """One agent as `printsrv agent list` and the metrics show it.

    Attributes:
        name: the agent's name.
        created_at: when it was added (or added again).
        last_contact_at: its last authenticated request, or None.
        last_address: the address it called from.
        online: contact within 3 poll intervals.
        printers: its printers that are present, by their central name (AGENT/PRINTER).
        jobs_in_flight: its open jobs that it has claimed (or its CUPS has).
        jobs_waiting: its open jobs not claimed yet.
    """

    name: str
    created_at: datetime
    last_contact_at: datetime | None
    last_address: str
    online: bool
    printers: tuple[str, ...]
    jobs_in_flight: int
    jobs_waiting: int


def list_agents(
    session: Session, *, poll_secs: int, now: datetime | None = None
) -> list[AgentView]:
    """Every active agent, sorted by name."""
    now = now or utcnow()
    agents = list(
        session.scalars(select(Agent).where(Agent.revoked_at.is_(None)).order_by(Agent.name))
    )
    printers: dict[int, list[str]] = {}
    for agent_id, name in session.execute(
        select(Printer.agent_id, Printer.name)
        .where(Printer.agent_id.is_not(None), Printer.present.is_(True))
        .order_by(Printer.name)
    ):
        printers.setdefault(agent_id, []).append(name)
    claimed = (PrintJob.state == "submitted") | (PrintJob.lease_until > now)
    counts: dict[tuple[int, bool], int] = {}
    for agent_id, in_flight, count in session.execute(
        select(PrintJob.agent_id, claimed, func.count())
        .where(PrintJob.agent_id.is_not(None), PrintJob.state.in_(OPEN_STATES))
        .group_by(PrintJob.agent_id, claimed)
    ):
        counts[(agent_id, bool(in_flight))] = count
    return [
        AgentView(
            name=a.name,
            created_at=a.created_at,
            last_contact_at=a.last_contact_at,
            last_address=a.last_address,
            online=is_online(a.last_contact_at, poll_secs=poll_secs, now=now),
            printers=tuple(printers.get(a.id, ())),
            jobs_in_flight=counts.get((a.id, True), 0),
            jobs_waiting=counts.get((a.id, False), 0),
        )
        for a in agents
    ]


def online_by_id(
    session: Session, *, poll_secs: int, now: datetime | None = None
) -> dict[int, tuple[str, bool]]:
    """Every agent's (name, online) by id, removed ones included (shown offline)."""
    now = now or utcnow()
    return {
        a.id: (
            a.name,
            a.revoked_at is None and is_online(a.last_contact_at, poll_secs=poll_secs, now=now),
        )
        for a in session.scalars(select(Agent))
    }


def remove_agent(session: Session, name: str) -> int:
    """Revoke the agent ``name``: its token stops working at once, its printers are marked
    gone, and its open jobs fail ("no printer") and are refunded. Returns how many jobs
    failed. NotFound when there is no such active agent.

    A job its CUPS already had may still come out of the printer: refunding it is the
    error printsrv prefers to charging for a print nobody can vouch for.
    """
    row = _active(session, name)
    if row is None:
        raise NotFound(f"Agent '{name}' does not exist (or was removed already)")
    row.revoked_at = utcnow()
    row.token_digest = ""
    session.execute(
        update(Printer)
        .where(Printer.agent_id == row.id)
        .values(present=False, synced_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    open_jobs = list(
        session.scalars(
            select(PrintJob.id).where(PrintJob.agent_id == row.id, PrintJob.state.in_(OPEN_STATES))
        )
    )
    failed = 0
    for job_id in open_jobs:
        failed += finish_job(session, job_id, "failed", f"no printer: agent '{name}' was removed")
    session.flush()
    return failed
