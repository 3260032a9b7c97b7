"""Wrong createToken API keys, counted per client address (people/ttp.py, throttle.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from support import set_config

from printsrv.errors import NotFound
from printsrv.operations.installation import Installation
from printsrv.people import ttp, users
from printsrv.people.throttle import LoginThrottled
from printsrv.people.tokens import ApiKeyRejected, TtpLoginDisabled
from printsrv.platform.models import utcnow

API_KEY = "lms-api-key-0123456789"


@pytest.fixture
def lms(installation: Installation) -> Installation:
    with installation.db.transaction() as session:
        users.add_user(session, "janet", full_name="Janet Jones")
    set_config(
        installation,
        {
            "web-login.ttp.enable": "Y",
            "web-login.ttp.apikey": API_KEY,
            "web-login.ttp.apikey.max-failures": "2",
            "web-login.throttle.window-secs": "60",
        },
    )
    return installation


def create(installation: Installation, key: str, address: str, **kwargs: object) -> str:
    return ttp.create_login_token(
        installation, api_key=key, user_name="janet", address=address, **kwargs
    )


def test_an_address_past_its_wrong_keys_is_refused_until_the_window_ends(
    lms: Installation,
) -> None:
    start = utcnow()
    for _ in range(2):
        with pytest.raises(ApiKeyRejected):
            create(lms, "wrong-key-0123456789", "192.0.2.1", now=start)
    with pytest.raises(LoginThrottled, match="Too many wrong API keys") as refused:
        create(lms, API_KEY, "192.0.2.1", now=start + timedelta(seconds=10))
    assert refused.value.retry_after == 50
    assert create(lms, API_KEY, "192.0.2.2", now=start)  # another address
    assert create(lms, API_KEY, "192.0.2.1", now=start + timedelta(seconds=61))


def test_ipv6_callers_are_counted_per_64(lms: Installation) -> None:
    for host in ("2001:db8:1:2::a", "2001:db8:1:2::b"):
        with pytest.raises(ApiKeyRejected):
            create(lms, "wrong-key-0123456789", host)
    with pytest.raises(LoginThrottled):
        create(lms, API_KEY, "2001:db8:1:2::c")
    assert create(lms, API_KEY, "2001:db8:1:3::a")


def test_only_a_wrong_key_counts(lms: Installation) -> None:
    set_config(lms, {"web-login.ttp.enable": "N"})
    lms.config.refresh()
    for _ in range(3):
        with pytest.raises(TtpLoginDisabled):
            create(lms, "wrong-key-0123456789", "192.0.2.1")
    set_config(lms, {"web-login.ttp.enable": "Y"})
    lms.config.refresh()
    assert create(lms, API_KEY, "192.0.2.1")


def test_a_caller_with_the_right_key_costs_one_statement(lms: Installation) -> None:
    # The address's counter and the user are read together; a throttled address is still
    # refused by that one read (the test above), and an unknown user answers NotFound.
    seen: list[str] = []

    def record(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(lms.db.engine, "before_cursor_execute", record)
    try:
        assert create(lms, API_KEY, "192.0.2.9")
        with pytest.raises(NotFound):
            ttp.create_login_token(lms, api_key=API_KEY, user_name="nobody", address="192.0.2.9")
    finally:
        event.remove(lms.db.engine, "before_cursor_execute", record)
    # (A config refresh may read the properties meanwhile; it is not the token's work.)
    token_work = [s for s in seen if "login_throttle" in s or "users" in s]
    assert len(token_work) == 2, seen
    assert all("login_throttle" in s and "users" in s for s in token_work), token_work
