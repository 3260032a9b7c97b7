"""Who stands at the station: a card number (a keyboard-wedge reader types it and Enter),
or a user name and PIN.

``Credentials.parse`` checks the shape (InvalidInput names the field); ``identify`` looks
the person up and counts a failure against the station (and the user, for a PIN) in the
caller's transaction. A disabled, deleted or unknown user, a wrong PIN and a user locked
by ``guessing`` all get the same answer, so the answer tells a guesser nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, PrintsrvError
from printsrv.people.models import User
from printsrv.people.users import PIN_MAX_DIGITS, PIN_MIN_DIGITS, find_user
from printsrv.platform.security import SecretHasher
from printsrv.release import guessing
from printsrv.release.errors import NotIdentified, StationThrottled

__all__ = ["UNKNOWN_CARD", "WRONG_PIN", "Credentials", "identify"]

UNKNOWN_CARD: Final = "This card is not known. Try again, or use your user name and PIN."
WRONG_PIN: Final = "Wrong user name or PIN."
MAX_CARD_LENGTH: Final = 100
MAX_USER_NAME_LENGTH: Final = 100


@dataclass(frozen=True)
class Credentials:
    """A card number, or a user name and PIN; ``repr`` never shows either secret."""

    card: str | None = field(default=None, repr=False)
    user_name: str | None = None
    pin: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, card: Any = None, user_name: Any = None, pin: Any = None) -> Credentials:
        """Check the shape: a card alone, or a user name with a PIN of 4 to 8 digits.

        Raises InvalidInput naming the field that is missing or malformed.
        """
        card = _text("card", card, MAX_CARD_LENGTH)
        user_name = _text("user", user_name, MAX_USER_NAME_LENGTH)
        pin = _text("pin", pin, PIN_MAX_DIGITS + 1)
        if card is not None:
            if user_name is not None or pin is not None:
                raise InvalidInput("Give either card, or user and pin, not both")
            return cls(card=card)
        if user_name is None:
            raise InvalidInput("Give card, or user and pin")
        if pin is None:
            raise InvalidInput("pin is missing: give it with user")
        if not (pin.isascii() and pin.isdigit() and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS):
            raise InvalidInput(f"pin must be {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits")
        return cls(user_name=user_name, pin=pin)


def _text(name: str, value: Any, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string (JSON text), not {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if len(text) > max_length or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput(f"{name} is too long or has control characters")
    return text


def _usable(user: User | None) -> User | None:
    if user is None or not user.enabled or user.deleted_at is not None:
        return None
    return user


def identify(
    session: Session,
    credentials: Credentials,
    *,
    station: str,
    hasher: SecretHasher,
    now: datetime,
) -> User | PrintsrvError:
    """The person the credentials name, or the refusal to raise once the caller has
    committed (the failure just counted must be stored, not rolled back with the error).

    StationThrottled when the station has used up its failures (nothing is looked up);
    NotIdentified for an unknown card, a wrong user name or PIN, or a locked user.
    """
    wait = guessing.station_wait(session, station, now)
    if wait is not None:
        minutes = math.ceil(wait / 60)
        return StationThrottled(
            f"Too many failed attempts at this station. Try again in {minutes} "
            f"minute{'s' if minutes > 1 else ''}.",
            retry_after=wait,
        )
    if credentials.card is not None:
        user = _usable(session.scalar(select(User).where(User.card_number == credentials.card)))
        if user is None:
            guessing.record_failure(session, station=station, user_name=None, now=now)
            return NotIdentified(UNKNOWN_CARD)
        return user
    assert credentials.user_name is not None
    found = find_user(session, credentials.user_name)
    user = _usable(found)
    pin_ok = user is not None and hasher.matches(credentials.pin, user.pin_hash)
    locked = user is not None and guessing.user_locked(session, user.user_name, now)
    if user is None or not pin_ok or locked:
        counted = found.user_name if found is not None else credentials.user_name.lower()
        guessing.record_failure(session, station=station, user_name=counted, now=now)
        return NotIdentified(WRONG_PIN)
    guessing.forget_user(session, user.user_name)
    return user
