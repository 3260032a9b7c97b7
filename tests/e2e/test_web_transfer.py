"""Giving credit from the user's page: the same service and rules as the REST transfer."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from support import LiveServer
from web_support import PASSWORD, add_person, give_credit

from printsrv.accounts import service as accounting
from printsrv.operations.installation import Installation


@pytest.fixture
def people(installation: Installation) -> Iterator[None]:
    add_person(installation, "janet")
    add_person(installation, "rijk", full_name="Rijk", alias="s777")
    give_credit(installation, "janet", "12.50", "Semester credit")
    yield


def logged_in(server: LiveServer) -> tuple[httpx.Client, str]:
    client = httpx.Client()
    page = client.get(f"{server.url}/user")
    login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    client.post(
        f"{server.url}/user/login",
        follow_redirects=True,
        data={"username": "janet", "password": PASSWORD, "csrf_token": login_csrf},
    )
    home = client.get(f"{server.url}/user")
    csrf = re.search(
        r'action="/user/transfer".*?name="csrf_token" value="([^"]+)"', home.text, re.S
    )
    assert csrf, home.text
    return client, csrf[1]


def balances(installation: Installation) -> tuple[Decimal, Decimal]:
    with installation.db.read() as session:
        return (accounting.user_balance(session, "janet"), accounting.user_balance(session, "rijk"))


def test_transfer_from_the_page_moves_credit_once(
    people: None, installation: Installation, live_server: LiveServer
) -> None:
    client, csrf = logged_in(live_server)
    with contextlib.closing(client):
        response = client.post(
            f"{live_server.url}/user/transfer",
            follow_redirects=False,
            data={
                "csrf_token": csrf,
                "recipient": "S777",
                "amount": "2.50",
                "comment": "for the poster",
            },
        )
        assert response.status_code == 303
        page = client.get(f"{live_server.url}{response.headers['location']}")
    assert "Transfer done." in page.text
    assert 'data-amount="10.000000"' in page.text
    assert "for the poster" in page.text
    assert balances(installation) == (Decimal("10.000000"), Decimal("2.500000"))


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"recipient": "rijk", "amount": "50.00"}, 409, "sender-below-zero"),
        ({"recipient": "janet", "amount": "1.00"}, 400, "(self)"),
        ({"recipient": "nobody", "amount": "1.00"}, 404, "nobody"),
        ({"recipient": "rijk", "amount": "1e3"}, 400, "amount"),
        ({"recipient": "rijk", "amount": "-1"}, 400, "amount"),
    ],
)
def test_refused_transfer_says_why_and_moves_nothing(
    people: None,
    installation: Installation,
    live_server: LiveServer,
    form: dict,
    status: int,
    says: str,
) -> None:
    client, csrf = logged_in(live_server)
    with contextlib.closing(client):
        response = client.post(
            f"{live_server.url}/user/transfer", data={"csrf_token": csrf, **form}
        )
    assert response.status_code == status, response.text
    assert says in response.text.lower()
    assert balances(installation) == (Decimal("12.500000"), Decimal("0"))


def test_transfer_without_the_sessions_csrf_token_is_refused(
    people: None, installation: Installation, live_server: LiveServer
) -> None:
    client, _ = logged_in(live_server)
    with contextlib.closing(client):
        response = client.post(
            f"{live_server.url}/user/transfer", data={"recipient": "rijk", "amount": "1.00"}
        )
    assert response.status_code == 403
    assert balances(installation) == (Decimal("12.500000"), Decimal("0"))


def test_transfer_needs_a_session(people: None, live_server: LiveServer) -> None:
    response = httpx.post(
        f"{live_server.url}/user/transfer",
        follow_redirects=False,
        data={"recipient": "rijk", "amount": "1.00"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/user"
