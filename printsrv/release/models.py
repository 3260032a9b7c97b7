"""Release tables (migration 0014_release_station, branch "release"): the station page's
sessions and the counters of failed card and PIN attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from printsrv.platform.models import Base, UTCDateTime, utcnow


class StationSession(Base):
    """A person identified at a release station; the station's cookie holds the id, the row
    its SHA-256.

    It lives ``release.station.idle-secs`` after the last input and is deleted once the
    person has released their documents, so the next person at the printer starts afresh.
    Kept in the database, so any machine behind the load balancer can serve the next tap.
    """

    __tablename__ = "release_station_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    printer_name: Mapped[str] = mapped_column(String(255))
    # The station's address: a session cookie carried to another machine is worthless.
    station_address: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ReleaseThrottle(Base):
    """Failed card or PIN attempts in the current window, per station ("station:...") or per
    user ("user:..."). A fixed window: the first failure after it has passed starts anew."""

    __tablename__ = "release_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
