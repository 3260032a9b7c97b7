"""Logging in with a one-time token (printsrv/people/logins.py), on every back-end.

On PostgreSQL the login is one statement (people/login_statement.py), on SQLite a
transaction of several; both must keep the same promises, which these tests state.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from support import set_config

from printsrv.operations.installation import Installation, open_installation
from printsrv.people import logins, tokens, users
from printsrv.people.logins import LINK_REFUSED, LoginFailed
from printsrv.people.models import LoginThrottle, SpentLoginToken, WebSession
from printsrv.people.throttle import LoginThrottled
from printsrv.platform.environment import Environment
from printsrv.platform.models import utcnow

ADDRESS = "192.0.2.10"


@pytest.fixture
def janet(installation: Installation) -> str:
    set_config(
        installation,
        {
            "web-login.ttp.enable": "Y",
            "web-login.ttp.apikey": "lms-key-0123456",
            "web-login.throttle.user.max-failures": "3",
            "web-login.throttle.address.max-failures": "5",
        },
    )
    with installation.db.transaction() as session:
        users.add_user(session, "janet", full_name="Janet Jones")
        users.add_alias(session, "S123456", "janet")
    return "janet"


def token_for(installation: Installation, user_name: str = "janet", **kwargs: object) -> str:
    return tokens.create_token(user_name, key=installation.token_key, **kwargs)  # type: ignore[arg-type]


def log_in(
    installation: Installation,
    token: str,
    auth_user: str = "janet",
    address: str = ADDRESS,
    replaces: str | None = None,
) -> logins.LoggedIn:
    return logins.log_in_with_token(
        installation, auth_user=auth_user, auth_token=token, address=address, replaces=replaces
    )


def count(installation: Installation, table: type) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def failures(installation: Installation) -> dict[str, int]:
    with installation.db.read() as session:
        return {row.key: row.failures for row in session.scalars(select(LoginThrottle))}


# --- success -----------------------------------------------------------------------------------


def test_a_token_opens_a_session_stored_only_as_a_hash(
    installation: Installation, janet: str
) -> None:
    result = log_in(installation, token_for(installation))
    assert (result.session.user_name, result.session.full_name) == ("janet", "Janet Jones")
    assert result.session.expires_at > utcnow()
    with installation.db.read() as session:
        row = session.scalars(select(WebSession)).one()
    assert row.id_hash == hashlib.sha256(result.session_id.encode()).hexdigest()
    assert result.session_id not in (row.id_hash, row.csrf_token)
    assert (row.csrf_token, row.login_method, row.client_address) == (
        result.session.csrf_token,
        "token",
        ADDRESS,
    )
    assert row.user_id == result.session.user_id
    assert count(installation, SpentLoginToken) == 1


def test_the_alias_logs_in_the_user_the_token_was_issued_for(
    installation: Installation, janet: str
) -> None:
    assert log_in(
        installation, token_for(installation), auth_user=" s123456 "
    ).session.user_name == ("janet")


def test_a_login_ends_the_session_the_browser_held(installation: Installation, janet: str) -> None:
    first = log_in(installation, token_for(installation))
    second = log_in(installation, token_for(installation), replaces=first.session_id)
    with installation.db.read() as session:
        hashes = set(session.scalars(select(WebSession.id_hash)))
    assert hashes == {hashlib.sha256(second.session_id.encode()).hexdigest()}


@pytest.mark.parametrize("again", ["forged", "spent", "for nobody"])
def test_a_refused_login_leaves_the_browsers_session_alone(
    installation: Installation, janet: str, again: str
) -> None:
    token = token_for(installation)
    first = log_in(installation, token)
    token = {"forged": "forged", "spent": token, "for nobody": token_for(installation, "x")}[again]
    with pytest.raises(LoginFailed):
        log_in(installation, token, replaces=first.session_id)
    assert count(installation, WebSession) == 1


# --- once, everywhere --------------------------------------------------------------------------


def test_a_token_logs_in_once(installation: Installation, janet: str) -> None:
    token = token_for(installation)
    log_in(installation, token)
    with pytest.raises(LoginFailed, match="not valid"):
        log_in(installation, token)
    assert (count(installation, WebSession), count(installation, SpentLoginToken)) == (1, 1)
    assert failures(installation) == {"user:janet": 1, f"addr:{ADDRESS}": 1}


def test_concurrent_logins_with_one_token_on_two_machines_open_one_session(
    installation: Installation, environment: Environment, janet: str
) -> None:
    # Every refusal counts as a failure; here they must all reach the token, unthrottled.
    set_config(
        installation,
        {
            "web-login.throttle.user.max-failures": "50",
            "web-login.throttle.address.max-failures": "50",
        },
    )
    other = open_installation(environment)  # a second machine of the installation
    token = token_for(installation)
    attempts = 8
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def attempt(machine: Installation) -> None:
        start.wait(5)
        try:
            log_in(machine, token)
            outcomes.append("in")
        except LoginFailed:
            outcomes.append("refused")

    threads = [
        threading.Thread(target=attempt, args=(installation if n % 2 else other,))
        for n in range(attempts)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        other.db.dispose()
    assert sorted(outcomes) == ["in"] + ["refused"] * (attempts - 1)
    assert (count(installation, WebSession), count(installation, SpentLoginToken)) == (1, 1)


# --- refusals: one message, counted, nothing written -------------------------------------------


@pytest.mark.parametrize(
    "case", ["forged", "expired", "other user", "unknown user", "disabled", "deleted", "ttp off"]
)
def test_every_refusal_looks_the_same_and_writes_nothing_but_the_count(
    installation: Installation, janet: str, case: str
) -> None:
    token, auth_user = token_for(installation), "janet"
    with installation.db.transaction() as session:
        users.add_user(session, "mallory")
    if case == "forged":
        token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    elif case == "expired":
        token = token_for(installation, now=utcnow() - timedelta(hours=2))
    elif case == "other user":
        auth_user = "mallory"
    elif case == "unknown user":
        auth_user = "nobody"
    elif case == "disabled":
        with installation.db.transaction() as session:
            users.set_enabled(session, "janet", False)
    elif case == "deleted":
        with installation.db.transaction() as session:
            users.delete_user(session, "janet")
    elif case == "ttp off":
        set_config(installation, {"web-login.ttp.enable": "N"})
    with pytest.raises(LoginFailed) as refused:
        log_in(installation, token, auth_user=auth_user)
    assert refused.value.message == LINK_REFUSED
    assert (count(installation, WebSession), count(installation, SpentLoginToken)) == (0, 0)
    assert failures(installation) == {f"user:{auth_user}": 1, f"addr:{ADDRESS}": 1}


def test_the_token_of_a_refused_login_still_works(installation: Installation, janet: str) -> None:
    token = token_for(installation)
    with pytest.raises(LoginFailed):
        log_in(installation, token, auth_user="s999")
    assert log_in(installation, token).session.user_name == "janet"


# --- throttling --------------------------------------------------------------------------------


def test_a_throttled_user_waits_even_with_a_good_token_and_it_stays_unspent(
    installation: Installation, janet: str
) -> None:
    for n in range(3):
        with pytest.raises(LoginFailed):
            log_in(installation, "forged", auth_user="S123456", address=f"198.51.100.{n}")
    token = token_for(installation)
    with pytest.raises(LoginThrottled) as throttled:
        log_in(installation, token)
    assert 0 < throttled.value.retry_after <= 900
    assert (count(installation, WebSession), count(installation, SpentLoginToken)) == (0, 0)


def test_the_throttle_is_judged_before_the_token(installation: Installation, janet: str) -> None:
    for _ in range(5):
        with pytest.raises(LoginFailed):
            log_in(installation, "forged", auth_user=f"user{_}")
    # Throttled by address: a forged token and disabled token logins say so, uncounted.
    with pytest.raises(LoginThrottled):
        log_in(installation, "forged")
    set_config(installation, {"web-login.ttp.enable": "N"})
    with pytest.raises(LoginThrottled):
        log_in(installation, token_for(installation))
    assert failures(installation)[f"addr:{ADDRESS}"] == 5
    assert "user:janet" not in failures(installation)


def test_a_login_clears_the_users_failures_but_not_the_addresss(
    installation: Installation, janet: str
) -> None:
    for _ in range(2):
        with pytest.raises(LoginFailed):
            log_in(installation, "forged")
    assert failures(installation) == {"user:janet": 2, f"addr:{ADDRESS}": 2}
    log_in(installation, token_for(installation), auth_user="S123456")
    assert failures(installation) == {f"addr:{ADDRESS}": 2}
