"""One-time web-login tokens (printsrv/people/tokens.py), on every back-end."""

from __future__ import annotations

import base64
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from support import set_config

from printsrv.errors import ConfigError, NotFound
from printsrv.operations.installation import Installation, open_installation
from printsrv.people import tokens, users
from printsrv.people.models import SpentLoginToken
from printsrv.platform.models import utcnow
from printsrv.platform.properties import set_property
from printsrv.platform.security import derive_key

EXPIRY = 5000


@pytest.fixture
def key(installation: Installation) -> bytes:
    return installation.token_key


@pytest.fixture
def janet(installation: Installation) -> str:
    with installation.db.transaction() as session:
        users.add_user(session, "janet", full_name="Janet Jones")
        users.add_alias(session, "S123456", "janet")
    return "janet"


def spent_rows(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(SpentLoginToken)) or 0


# --- the token itself (no database) ------------------------------------------------------------


def test_token_round_trip_holds_user_and_creation_time() -> None:
    key = derive_key(b"x" * 32, "test")
    now = utcnow()
    token = tokens.create_token("janet", key=key, now=now)
    checked = tokens.read_token(token, key=key, expiry_ms=EXPIRY, now=now)
    assert checked.user_name == "janet"
    assert abs(checked.created_at - now) < timedelta(milliseconds=1)
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token
    assert "janet" not in token  # encrypted, not just signed


def test_tokens_for_the_same_user_differ() -> None:
    key = derive_key(b"x" * 32, "test")
    now = utcnow()
    assert tokens.create_token("janet", key=key, now=now) != tokens.create_token(
        "janet", key=key, now=now
    )


def test_token_is_valid_until_expiry_and_expired_after() -> None:
    key = derive_key(b"x" * 32, "test")
    now = utcnow().replace(microsecond=0)  # tokens keep milliseconds
    token = tokens.create_token("janet", key=key, now=now)
    tokens.read_token(token, key=key, expiry_ms=EXPIRY, now=now + timedelta(milliseconds=EXPIRY))
    with pytest.raises(tokens.TokenExpired):
        tokens.read_token(
            token, key=key, expiry_ms=EXPIRY, now=now + timedelta(milliseconds=EXPIRY + 1)
        )


def test_token_from_the_future_beyond_clock_skew_is_invalid() -> None:
    key = derive_key(b"x" * 32, "test")
    now = utcnow()
    token = tokens.create_token("janet", key=key, now=now + tokens.CLOCK_SKEW * 2)
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_token(token, key=key, expiry_ms=EXPIRY, now=now)
    slightly_ahead = tokens.create_token("janet", key=key, now=now + timedelta(seconds=2))
    assert tokens.read_token(slightly_ahead, key=key, expiry_ms=EXPIRY, now=now).user_name


def _flip(token: str, index: int) -> str:
    swapped = "A" if token[index] != "A" else "B"
    return token[:index] + swapped + token[index + 1 :]


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: _flip(t, 20), id="flipped-ciphertext"),
        pytest.param(lambda t: _flip(t, len(t) - 3), id="flipped-tag"),
        pytest.param(lambda t: _flip(t, 0), id="flipped-version"),
        pytest.param(lambda t: t[:-4], id="truncated"),
        pytest.param(lambda t: t + "AAAA", id="extended"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "not a token!", id="not-base64"),
        pytest.param(lambda t: "A" * 5000, id="huge"),
        pytest.param(lambda t: "AQ", id="too-short"),
    ],
)
def test_tampered_or_garbled_token_is_invalid(mangle) -> None:  # type: ignore[no-untyped-def]
    key = derive_key(b"x" * 32, "test")
    token = tokens.create_token("janet", key=key)
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_token(mangle(token), key=key, expiry_ms=EXPIRY)


def test_token_of_another_installation_is_invalid() -> None:
    token = tokens.create_token(
        "janet", key=derive_key(b"a" * 32, "printsrv one-time login tokens")
    )
    with pytest.raises(tokens.TokenInvalid):
        tokens.read_token(
            token, key=derive_key(b"b" * 32, "printsrv one-time login tokens"), expiry_ms=EXPIRY
        )


def test_token_repr_does_not_show_its_digest() -> None:
    key = derive_key(b"x" * 32, "test")
    checked = tokens.read_token(tokens.create_token("janet", key=key), key=key, expiry_ms=EXPIRY)
    assert checked.digest not in repr(checked)


def test_retention_covers_the_largest_expiry_the_config_allows(
    installation: Installation,
) -> None:
    largest = int(tokens.MAX_EXPIRY.total_seconds() * 1000)
    with installation.db.transaction() as session:
        set_property(
            session,
            "web-login.ttp.token.expiry-msecs",
            str(largest),
            hasher=installation.hasher,
        )
        with pytest.raises(ConfigError):
            set_property(
                session,
                "web-login.ttp.token.expiry-msecs",
                str(largest + 1),
                hasher=installation.hasher,
            )
    assert tokens.RETENTION > tokens.MAX_EXPIRY


# --- spending (redeem_token): once, everywhere ----------------------------------------------------


def test_token_is_spent_once(installation: Installation, key: bytes, janet: str) -> None:
    token = tokens.create_token("janet", key=key)
    with installation.db.transaction() as session:
        tokens.redeem_token(session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY)
    with installation.db.transaction() as session, pytest.raises(tokens.TokenUsed):
        tokens.redeem_token(session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY)
    assert spent_rows(installation) == 1


def test_second_spelling_of_a_token_is_the_same_token(
    installation: Installation, key: bytes
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "jane")
    # 41 bytes of token: the last base64 character carries 2 unused bits.
    token = tokens.create_token("jane", key=key)
    assert len(base64.urlsafe_b64decode(token + "==")) % 3 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert respelled != token
    with installation.db.transaction() as session:
        tokens.redeem_token(session, auth_user="jane", token=token, key=key, expiry_ms=EXPIRY)
    with installation.db.transaction() as session, pytest.raises(tokens.TokenUsed):
        tokens.redeem_token(session, auth_user="jane", token=respelled, key=key, expiry_ms=EXPIRY)


def test_spent_token_is_refused_by_every_machine(  # type: ignore[no-untyped-def]
    environment, janet: str
) -> None:
    # Two installations on one database and secret: two machines of one installation.
    first, second = open_installation(environment), open_installation(environment)
    try:
        token = tokens.create_token("janet", key=first.token_key)
        with second.db.transaction() as session:
            tokens.redeem_token(
                session, auth_user="janet", token=token, key=second.token_key, expiry_ms=EXPIRY
            )
        with first.db.transaction() as session, pytest.raises(tokens.TokenUsed):
            tokens.redeem_token(
                session, auth_user="janet", token=token, key=first.token_key, expiry_ms=EXPIRY
            )
    finally:
        first.db.dispose()
        second.db.dispose()


def test_token_stays_unspent_when_the_login_transaction_fails(
    installation: Installation, key: bytes, janet: str
) -> None:
    token = tokens.create_token("janet", key=key)
    with pytest.raises(RuntimeError), installation.db.transaction() as session:
        tokens.redeem_token(session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY)
        raise RuntimeError("the session row could not be written")
    with installation.db.transaction() as session:
        tokens.redeem_token(session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY)
    assert spent_rows(installation) == 1


def test_concurrent_spends_of_one_token_let_exactly_one_through(
    installation: Installation, key: bytes, janet: str
) -> None:
    token = tokens.create_token("janet", key=key)
    first_spent = threading.Event()
    outcomes: dict[str, str] = {}

    def first() -> None:
        with installation.db.transaction() as session:
            tokens.redeem_token(session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY)
            first_spent.set()
            time.sleep(0.3)  # the second attempt is in flight while this one is uncommitted
        outcomes["first"] = "spent"

    def second() -> None:
        first_spent.wait(5)
        try:
            with installation.db.transaction() as session:
                tokens.redeem_token(
                    session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY
                )
            outcomes["second"] = "spent"
        except tokens.TokenUsed:
            outcomes["second"] = "refused"

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == {"first": "spent", "second": "refused"}


def test_purge_keeps_spent_tokens_until_no_expiry_could_revive_them(
    installation: Installation, key: bytes, janet: str
) -> None:
    now = utcnow()
    token = tokens.create_token("janet", key=key, now=now)
    with installation.db.transaction() as session:
        tokens.redeem_token(
            session, auth_user="janet", token=token, key=key, expiry_ms=EXPIRY, now=now
        )
    with installation.db.transaction() as session:
        assert tokens.purge_spent_tokens(session, now=now + timedelta(hours=12)) == 0
    with installation.db.transaction() as session:
        assert tokens.purge_spent_tokens(session, now=now + tokens.RETENTION * 2) == 1
    assert spent_rows(installation) == 0


# --- issuing (onetime-auth.createToken) ---------------------------------------------------------


@pytest.fixture
def ttp(installation: Installation) -> str:
    set_config(
        installation, {"web-login.ttp.enable": "Y", "web-login.ttp.apikey": "lms-key-0123456"}
    )
    return "lms-key-0123456"


def issue(installation: Installation, api_key: str, user_name: str) -> str:
    with installation.db.read() as session:
        return tokens.issue_token(
            session,
            api_key=api_key,
            user_name=user_name,
            snapshot=installation.config.snapshot(),
            key=installation.token_key,
        )


def test_issue_maps_aliases_to_the_user(installation: Installation, ttp: str, janet: str) -> None:
    token = issue(installation, ttp, " s123456 ")
    assert tokens.read_token(token, key=installation.token_key, expiry_ms=EXPIRY).user_name == (
        "janet"
    )


def test_issue_refuses_when_ttp_login_is_disabled(installation: Installation, janet: str) -> None:
    set_config(installation, {"web-login.ttp.apikey": "lms-key-0123456"})
    with pytest.raises(tokens.TtpLoginDisabled, match=r"web-login\.ttp\.enable"):
        issue(installation, "lms-key-0123456", janet)


@pytest.mark.parametrize("api_key", ["wrong", "", "lms-key-0123456 ", "LMS-KEY-0123456"])
def test_issue_refuses_a_wrong_key(
    installation: Installation, ttp: str, janet: str, api_key: str
) -> None:
    with pytest.raises(tokens.ApiKeyRejected):
        issue(installation, api_key, janet)


def test_issue_with_no_key_configured_accepts_no_key(
    installation: Installation, janet: str
) -> None:
    set_config(installation, {"web-login.ttp.enable": "Y"})
    for candidate in ("", " ", "anything"):
        with pytest.raises(tokens.ApiKeyRejected):
            issue(installation, candidate, janet)


def test_issue_checks_the_key_before_revealing_anything_about_users(
    installation: Installation, ttp: str
) -> None:
    with pytest.raises(tokens.ApiKeyRejected):
        issue(installation, "wrong", "nobody")


def test_issue_refuses_unknown_disabled_and_malformed_users(
    installation: Installation, ttp: str, janet: str
) -> None:
    with pytest.raises(NotFound, match="nobody"):
        issue(installation, ttp, "nobody")
    for malformed in ("two words", "", "x" * 101):
        with pytest.raises(NotFound):
            issue(installation, ttp, malformed)
    with installation.db.transaction() as session:
        users.set_enabled(session, janet, False)
    with pytest.raises(tokens.UserDisabled, match="janet"):
        issue(installation, ttp, janet)


# --- redeeming ---------------------------------------------------------------------------------


def redeem(installation: Installation, auth_user: str, token: str) -> str:
    with installation.db.transaction() as session:
        user = tokens.redeem_token(
            session,
            auth_user=auth_user,
            token=token,
            key=installation.token_key,
            expiry_ms=EXPIRY,
        )
        return user.user_name


def test_redeem_accepts_the_user_by_alias(installation: Installation, ttp: str, janet: str) -> None:
    assert redeem(installation, "S123456", issue(installation, ttp, janet)) == "janet"


def test_redeem_for_another_user_is_refused_and_leaves_the_token_unspent(
    installation: Installation, ttp: str, janet: str
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "mallory")
    token = issue(installation, ttp, janet)
    with pytest.raises(tokens.TokenInvalid):
        redeem(installation, "mallory", token)
    with pytest.raises(tokens.TokenInvalid):
        redeem(installation, "bad name", token)
    assert redeem(installation, "janet", token) == "janet"
    with pytest.raises(tokens.TokenUsed):
        redeem(installation, "janet", token)


def test_redeem_refuses_a_user_disabled_after_issue(
    installation: Installation, ttp: str, janet: str
) -> None:
    token = issue(installation, ttp, janet)
    with installation.db.transaction() as session:
        users.set_enabled(session, janet, False)
    with pytest.raises(tokens.UserDisabled):
        redeem(installation, janet, token)
    assert spent_rows(installation) == 0
