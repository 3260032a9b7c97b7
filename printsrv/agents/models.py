"""The agents' table (`printsrv.agents`; migration 0015_agents, branch "agents").

The remote printers are rows of printing's ``printer`` table with ``agent_id`` set, and their
jobs rows of ``print_job`` with ``agent_id`` set (both columns come with the same migration).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.platform.models import Base, UTCDateTime, utcnow


class Agent(Base):
    """A remote site's print agent.

    `token_digest` is the keyed hash of its token (`SecretHasher.digest`); the token itself is
    shown once, by `printsrv agent add`. `revoked_at` set means removed: the row stays so
    that its printers keep their names in the document log, and adding the name again gives
    it a new token. `last_contact_at` is the last authenticated request.
    """

    __tablename__ = "agent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_digest: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_address: Mapped[str] = mapped_column(String(64), default="")
