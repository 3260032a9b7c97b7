"""A card belongs to one user: the service refuses a clash without naming the owner, and the
unique index refuses it again when two requests race past the service's check."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import IntegrityError

from printsrv.errors import Conflict, PrintsrvError
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import User


@pytest.fixture
def two(installation: Installation) -> Installation:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        users.add_user(session, "rijk")
    return installation


def set_card(installation: Installation, name: str, card: str) -> None:
    with installation.db.transaction() as session:
        users.set_user_fields(session, name, card_number=card, hasher=installation.hasher)


def test_a_card_another_user_holds_is_refused_without_naming_them(two: Installation) -> None:
    set_card(two, "janet", "C-1")
    with pytest.raises(Conflict) as refused:
        set_card(two, "rijk", "C-1")
    assert "is taken by another user" in refused.value.message
    assert "janet" not in refused.value.message
    set_card(two, "janet", "C-1")  # one's own card again is no clash


def test_the_database_refuses_a_second_holder_even_past_the_service(two: Installation) -> None:
    set_card(two, "janet", "C-1")
    with pytest.raises(IntegrityError), two.db.transaction() as session:
        rijk = users.get_user(session, "rijk")
        rijk.card_number = "C-1"
        session.flush()


def test_two_users_given_one_card_at_the_same_moment_get_it_once(two: Installation) -> None:
    for round_number in range(5):
        card = f"RACE-{round_number}"
        start = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def give(
            name: str,
            card: str = card,
            start: threading.Barrier = start,
            outcomes: dict[str, str] = outcomes,
        ) -> None:
            start.wait()
            try:
                set_card(two, name, card)
                outcomes[name] = "set"
            except PrintsrvError as refusal:
                outcomes[name] = refusal.message

        threads = [threading.Thread(target=give, args=(n,)) for n in ("janet", "rijk")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes.values())[-1] == "set", outcomes
        assert "taken by another user" in sorted(outcomes.values())[0], outcomes
        with two.db.read() as session:
            holders = session.query(User).filter(User.card_number == card).count()
        assert holders == 1
