"""Who stands at a release station: credentials' shape, identification, and the guessing
counters behind it (printsrv/release/identify.py, guessing.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from printsrv.errors import InvalidInput, PrintsrvError
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import User
from printsrv.platform.models import utcnow
from printsrv.release import guessing
from printsrv.release.errors import NotIdentified, StationThrottled
from printsrv.release.identify import UNKNOWN_CARD, WRONG_PIN, Credentials, identify
from printsrv.release.models import ReleaseThrottle

STATION = "10.0.0.5"


@pytest.fixture
def people(installation: Installation) -> Installation:
    """janet with card C-1 and PIN 2468; rijk, disabled, with card C-2 and PIN 1357."""
    with installation.db.transaction() as session:
        for name, card, pin in (("janet", "C-1", "2468"), ("rijk", "C-2", "1357")):
            users.add_user(session, name)
            users.set_user_fields(
                session, name, card_number=card, pin=pin, hasher=installation.hasher
            )
        users.set_enabled(session, "rijk", False)
    return installation


def attempt(
    installation: Installation, credentials: Credentials, *, station: str = STATION, now: datetime
) -> User | PrintsrvError:
    with installation.db.transaction() as session:
        outcome = identify(
            session, credentials, station=station, hasher=installation.hasher, now=now
        )
        return outcome.user_name if isinstance(outcome, User) else outcome  # type: ignore[return-value]


def failures(installation: Installation) -> dict[str, int]:
    with installation.db.read() as session:
        return dict(session.execute(select(ReleaseThrottle.key, ReleaseThrottle.failures)).all())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Give card, or user and pin"),
        ({"card": "  "}, "Give card, or user and pin"),
        ({"user_name": "janet"}, "pin is missing"),
        ({"card": "C-1", "user_name": "janet", "pin": "2468"}, "not both"),
        ({"user_name": "janet", "pin": "123"}, "pin must be 4 to 8 digits"),
        ({"user_name": "janet", "pin": "123456789"}, "pin must be 4 to 8 digits"),
        ({"user_name": "janet", "pin": "12a4"}, "pin must be 4 to 8 digits"),
        ({"user_name": "janet", "pin": "١٢٣٤"}, "pin must be 4 to 8 digits"),
        ({"user_name": "janet", "pin": 2468}, "pin must be a string"),
        ({"card": "x" * 101}, "card is too long or has control characters"),
        ({"card": "12\n34"}, "card is too long or has control characters"),
    ],
)
def test_malformed_credentials_name_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Credentials.parse(**fields)  # type: ignore[arg-type]


def test_credentials_never_show_the_card_or_the_pin() -> None:
    assert "C-1" not in repr(Credentials.parse(card="C-1"))
    assert "2468" not in repr(Credentials.parse(user_name="janet", pin="2468"))


def test_a_card_or_a_name_and_pin_identify_a_live_user(people: Installation) -> None:
    now = utcnow()
    assert attempt(people, Credentials.parse(card="C-1"), now=now) == "janet"
    assert attempt(people, Credentials.parse(user_name="JANET", pin="2468"), now=now) == "janet"
    assert failures(people) == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"card": "C-9"}, UNKNOWN_CARD),
        ({"card": "C-2"}, UNKNOWN_CARD),  # rijk is disabled: his card is as good as unknown
        ({"user_name": "janet", "pin": "0000"}, WRONG_PIN),
        ({"user_name": "nobody", "pin": "2468"}, WRONG_PIN),
        ({"user_name": "rijk", "pin": "1357"}, WRONG_PIN),
    ],
)
def test_every_miss_is_counted_and_says_only_what_failed(
    people: Installation, fields: dict[str, str], message: str
) -> None:
    refusal = attempt(people, Credentials.parse(**fields), now=utcnow())
    assert isinstance(refusal, NotIdentified) and refusal.message == message
    counted = failures(people)
    assert counted["station:" + STATION] == 1
    if "user_name" in fields:
        assert counted["user:" + fields["user_name"]] == 1


def test_five_misses_lock_the_station_until_the_window_ends(people: Installation) -> None:
    now = utcnow()
    for _ in range(guessing.MAX_FAILURES):
        assert isinstance(attempt(people, Credentials.parse(card="nope"), now=now), NotIdentified)
    locked = attempt(people, Credentials.parse(card="C-1"), now=now + timedelta(seconds=60))
    assert isinstance(locked, StationThrottled)
    assert locked.retry_after == 240
    # Another station is not affected by this one's misses.
    assert attempt(people, Credentials.parse(card="C-1"), station="10.0.0.6", now=now) == "janet"
    later = now + guessing.WINDOW + timedelta(seconds=1)
    assert attempt(people, Credentials.parse(card="C-1"), now=later) == "janet"


def test_a_locked_user_hears_what_a_wrong_pin_hears_and_the_lock_lifts(
    people: Installation,
) -> None:
    now = utcnow()
    for number in range(guessing.MAX_FAILURES):
        # Spread over stations: the user's own count locks her, not a station's.
        wrong = Credentials.parse(user_name="janet", pin="0000")
        assert isinstance(
            attempt(people, wrong, station=f"10.1.0.{number}", now=now), NotIdentified
        )
    right = Credentials.parse(user_name="janet", pin="2468")
    refusal = attempt(people, right, station="10.2.0.1", now=now)
    assert isinstance(refusal, NotIdentified) and refusal.message == WRONG_PIN
    # The card is another matter: the lock guards the PIN.
    assert attempt(people, Credentials.parse(card="C-1"), station="10.2.0.2", now=now) == "janet"
    later = now + guessing.WINDOW + timedelta(seconds=1)
    assert attempt(people, right, station="10.2.0.3", now=later) == "janet"
    # A success forgets the user's failures; the stations keep theirs.
    assert "user:janet" not in failures(people)


def test_stale_counters_are_purged(people: Installation) -> None:
    now = utcnow()
    attempt(people, Credentials.parse(card="nope"), now=now)
    with people.db.transaction() as session:
        assert guessing.purge_stale(session, now) == 0
        assert guessing.purge_stale(session, now + guessing.WINDOW) == 1
    assert failures(people) == {}
