"""What a release station or terminal is refused with (rows in printsrv/error_table.py).

NotAuthenticated
  NotIdentified        an unknown card, a wrong user name or PIN, or a locked user
NotAllowed
  StationThrottled     too many failed attempts from this station: retry_after seconds
"""

from __future__ import annotations

from printsrv.errors import NotAllowed, NotAuthenticated

__all__ = ["NotIdentified", "StationThrottled"]


class NotIdentified(NotAuthenticated):
    """The card is not known, or the user name and PIN do not match (a user locked by too
    many wrong PINs gets this very answer, so a guesser cannot tell a lock from a miss)."""


class StationThrottled(NotAllowed):
    """This station has had too many failed card or PIN attempts; ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
