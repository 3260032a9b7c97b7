"""Telling waiting print agents that a job for them was committed.

A job for a remote printer (one registered by a print agent, ``printer.agent_id`` set) is
not sent to CUPS: it waits in the database until its agent claims it (``printsrv.agents``).
Agents wait in a long-poll on any machine of the installation, so the transaction that
creates the job announces it:

- on PostgreSQL with ``pg_notify`` on ``CHANNEL_SQL`` (payload: the agent id), which
  PostgreSQL delivers to every listening server when, and only if, the transaction commits;
- in this process through ``session.info[ANNOUNCED]`` (the agent ids), which
  ``printsrv.agents.wakeups`` reads after the commit (SQLite has no notifications).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["ANNOUNCED", "CHANNEL_SQL", "announce_remote_job"]

# Named after the schema, as the document log's channel: installations in other schemas of
# one database do not wake each other's agents.
CHANNEL_SQL: Final = "'printsrv_agents_' || left(md5(current_schema()), 16)"
ANNOUNCED: Final = "printsrv.agents_announced"


def announce_remote_job(session: Session, agent_id: int) -> None:
    """Wake the long-polls of agent ``agent_id`` when this transaction commits."""
    session.info.setdefault(ANNOUNCED, set()).add(agent_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_notify({CHANNEL_SQL}, :agent)"), {"agent": str(agent_id)})
