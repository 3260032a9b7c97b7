"""Telling waiting print agents that a job for them was committed.

A job for a remote printer (one registered by a print agent, ``printer.agent_id`` set) is
not sent to CUPS: it waits in the database until its agent claims it (``printsrv.agents``).
Agents wait in a long-poll on any machine of the installation, so the transaction that
creates the job announces it:

- on PostgreSQL by a notification on ``Topic.AGENT_JOBS`` (payload: the agent id), which
  PostgreSQL delivers to every listening server when, and only if, the transaction commits
  (printsrv/platform/notifications.py);
- in this process through ``session.info[ANNOUNCED]`` (the agent ids), which
  ``printsrv.agents.wakeups`` reads after the commit (SQLite has no notifications).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from printsrv.platform.notifications import Topic, announce

__all__ = ["ANNOUNCED", "announce_remote_job"]

ANNOUNCED: Final = "printsrv.agents_announced"


def announce_remote_job(session: Session, agent_id: int) -> None:
    """Wake the long-polls of agent ``agent_id`` when this transaction commits."""
    session.info.setdefault(ANNOUNCED, set()).add(agent_id)
    announce(session, Topic.AGENT_JOBS, str(agent_id))
