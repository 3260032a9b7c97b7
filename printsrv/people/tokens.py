"""One-time web-login tokens: how a trusted third party (an LMS) logs a user in.

The LMS calls `onetime-auth.createToken(apikey, username)` (see `issue_token`), then has the
user's browser POST `auth_user` and `auth_token` to the web app, which calls `redeem_token`.

A token is the user name and its creation time, encrypted and authenticated with AES-GCM
under `Installation.token_key` (derived from the installation secret, so every worker and
machine reads every token). It expires after `web-login.ttp.token.expiry-msecs` and logs
someone in once: redeeming it inserts its SHA-256 into `spent_login_token`, whose primary
key refuses a second use everywhere, inside the login's own transaction.

    PrintsrvError
    ├── NotAuthenticated
    │   ├── ApiKeyRejected      the TTP API key is wrong, or none is configured
    │   └── TokenError          a login token is refused
    │       ├── TokenInvalid    not a token of this installation, or for another user
    │       ├── TokenExpired    older than web-login.ttp.token.expiry-msecs
    │       └── TokenUsed       it has logged someone in already
    └── NotAllowed
        ├── TtpLoginDisabled    web-login.ttp.enable is not Y
        └── UserDisabled        the user exists but may not log in
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from printsrv.errors import NotAllowed, NotAuthenticated, NotFound
from printsrv.people.models import SpentLoginToken, User
from printsrv.people.users import UserRef, find_user, find_user_refs
from printsrv.platform.models import utcnow
from printsrv.platform.properties import Snapshot
from printsrv.platform.security import equals_constant_time

__all__ = [
    "ApiKeyRejected",
    "LoginToken",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenUsed",
    "TtpLoginDisabled",
    "UserDisabled",
    "check_holder",
    "check_token_caller",
    "create_token",
    "issue_token",
    "purge_spent_tokens",
    "read_token",
    "redeem_token",
    "spend_token",
    "token_for",
]

_VERSION = b"\x01"
_NONCE_BYTES = 12
# Binds the ciphertext to this use: a blob encrypted under the same key for another
# purpose can never pass as a login token.
_AAD = b"printsrv one-time login token v1"
_TIME = struct.Struct(">Q")  # creation time, milliseconds since the epoch
MAX_TOKEN_LENGTH = 512  # a 100-character user name gives ~200; anything longer is junk
# Clocks of the machines that share an installation may differ a little; a token "from the
# future" beyond this is refused, since it would otherwise live longer than configured.
CLOCK_SKEW = timedelta(seconds=30)
# The largest value platform/properties.py lets `web-login.ttp.token.expiry-msecs` take. Spent
# tokens are kept until even that expiry has passed, so raising the property never revives a
# used token.
MAX_EXPIRY = timedelta(days=1)
RETENTION = MAX_EXPIRY + CLOCK_SKEW
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class ApiKeyRejected(NotAuthenticated):
    """The API key given to `onetime-auth.createToken` is wrong, or none is configured."""


class TtpLoginDisabled(NotAllowed):
    """Token logins are switched off (`web-login.ttp.enable` is not Y)."""


class UserDisabled(NotAllowed):
    """The user exists but is disabled, so no token is issued and no login is allowed."""


class TokenError(NotAuthenticated):
    """Base of the reasons a one-time login token is refused."""


class TokenInvalid(TokenError):
    """The token is garbled, tampered with, made with another key, or for another user."""


class TokenExpired(TokenError):
    """The token is older than `web-login.ttp.token.expiry-msecs`."""


class TokenUsed(TokenError):
    """The token has logged someone in already; it is refused on every worker and machine."""


@dataclass(frozen=True)
class LoginToken:
    """A token that decrypted and is unexpired.

    user_name:  the canonical user name it was issued for (aliases already mapped).
    created_at: when it was issued (UTC).
    digest:     hex SHA-256 of its bytes: the key under which it is recorded once spent.
    """

    user_name: str
    created_at: datetime
    digest: str = field(repr=False)


def create_token(user_name: str, *, key: bytes, now: datetime | None = None) -> str:
    """A new token for `user_name` (already canonical), URL-safe base64 without padding."""
    created = now or utcnow()
    millis = int(created.timestamp() * 1000)
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = _TIME.pack(millis) + user_name.encode("utf-8")
    sealed = AESGCM(key).encrypt(nonce, plaintext, _AAD)
    raw = _VERSION + nonce + sealed
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_token(
    token: str, *, key: bytes, expiry_ms: int, now: datetime | None = None
) -> LoginToken:
    """Decrypt and check a token; does not look at (or change) whether it was spent.

    Raises TokenInvalid when it is not an authentic token of this installation, and
    TokenExpired when it is older than `expiry_ms` milliseconds.
    """
    raw = _decode(token)
    if raw[:1] != _VERSION or len(raw) < 1 + _NONCE_BYTES + _TIME.size + 16:
        raise TokenInvalid("Login token is not valid")
    nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
    try:
        plaintext = AESGCM(key).decrypt(nonce, sealed, _AAD)
    except InvalidTag:
        raise TokenInvalid("Login token is not valid") from None
    (millis,) = _TIME.unpack(plaintext[: _TIME.size])
    try:
        user_name = plaintext[_TIME.size :].decode("utf-8")
        created_at = datetime.fromtimestamp(millis / 1000, UTC)
    except (UnicodeDecodeError, ValueError, OverflowError, OSError):
        # Authentic but unreadable can only mean a bug on the issuing side; refuse it.
        raise TokenInvalid("Login token is not valid") from None
    current = now or utcnow()
    if created_at - current > CLOCK_SKEW:
        raise TokenInvalid("Login token was issued in the future")
    if current - created_at > timedelta(milliseconds=expiry_ms):
        raise TokenExpired("Login token has expired")
    return LoginToken(user_name, created_at, hashlib.sha256(raw).hexdigest())


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("Login token is not valid")
    text = token.strip()
    try:
        # Hash the decoded bytes, not the text: two spellings of one token (base64's unused
        # trailing bits) must not count as two tokens.
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("Login token is not valid") from None


def _spend_statement(dialect: str) -> Any:
    # ON CONFLICT DO NOTHING instead of catching the duplicate-key error: one statement, and
    # the transaction stays usable (PostgreSQL aborts it on an error). If another
    # transaction is inserting the same digest, PostgreSQL waits for it to end first.
    return (
        _INSERTS[dialect](SpentLoginToken)
        .values(
            digest=bindparam("digest"),
            user_name=bindparam("user_name"),
            spent_at=bindparam("spent_at"),
            purge_after=bindparam("purge_after"),
        )
        .on_conflict_do_nothing()
        .returning(SpentLoginToken.digest)
    )


_SPEND = {dialect: _spend_statement(dialect) for dialect in _INSERTS}


def _record_spent(session: Session, checked: LoginToken, now: datetime) -> None:
    # Core on the session's connection, built once per dialect: through the ORM, this one
    # INSERT cost more than the database's work on it.
    connection = session.connection()
    inserted = connection.execute(
        _SPEND[connection.dialect.name],
        {
            "digest": checked.digest,
            "user_name": checked.user_name,
            "spent_at": now,
            "purge_after": checked.created_at + RETENTION,
        },
    ).scalar_one_or_none()
    if inserted is None:
        raise TokenUsed("Login token has been used already")


def purge_spent_tokens(session: Session, *, now: datetime | None = None) -> int:
    """Delete spent-token rows that no longer protect anything; returns how many."""
    current = now or utcnow()
    result = session.execute(
        delete(SpentLoginToken)
        .where(SpentLoginToken.purge_after < current)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def issue_token(
    on: Session | Connection,
    *,
    api_key: str,
    user_name: str,
    snapshot: Snapshot,
    key: bytes,
    now: datetime | None = None,
) -> str:
    """`onetime-auth.createToken`: a token for `user_name`, if the caller may have one.

    Checked in this order, so nothing about users is revealed to a caller without the key:
    TtpLoginDisabled (`web-login.ttp.enable` is not Y), ApiKeyRejected (the key does not
    match `web-login.ttp.apikey`, compared in constant time; an unset key matches nothing),
    NotFound (no such user or alias, or a name no user can have), UserDisabled.
    Aliases are mapped first; the token holds the canonical user name. `on` is a session,
    or a bare connection (`Database.statement`): the user read is the only statement.
    """
    check_token_caller(api_key=api_key, snapshot=snapshot)
    # A few columns through Core (find_user_refs), not a whole User through the ORM: the
    # user read was most of the server's work per token.
    (user,) = find_user_refs(on, user_name)
    return token_for(user, user_name=user_name, key=key, now=now)


def check_token_caller(*, api_key: str, snapshot: Snapshot) -> None:
    """`issue_token`'s first two checks, which need no database: TtpLoginDisabled, then
    ApiKeyRejected."""
    if not snapshot["web-login.ttp.enable"]:
        raise TtpLoginDisabled(
            "Login by trusted third party is disabled (web-login.ttp.enable is not Y)"
        )
    if not snapshot["web-login.ttp.apikey"].matches(api_key):
        raise ApiKeyRejected("API key is wrong, or no TTP API key is configured")


def token_for(
    user: UserRef | None, *, user_name: str, key: bytes, now: datetime | None = None
) -> str:
    """`issue_token`'s last two checks on the user `user_name` found (None: nobody), then
    the token: NotFound, UserDisabled."""
    if user is None:
        raise NotFound(f"User {user_name.strip().lower()!r} does not exist")
    if not user.enabled:
        raise UserDisabled(f"User {user.user_name!r} is disabled")
    return create_token(user.user_name, key=key, now=now)


def redeem_token(
    session: Session,
    *,
    auth_user: str,
    token: str,
    key: bytes,
    expiry_ms: int,
    now: datetime | None = None,
) -> User:
    """Log in with a token: the enabled user it was issued for, the token spent.

    `auth_user` goes through the aliases and must name the token's user (TokenInvalid
    otherwise). Raises TokenInvalid, TokenExpired, TokenUsed, or UserDisabled when the user
    was disabled or deleted since. The token is spent only when every check passed.
    """
    current = now or utcnow()
    checked = read_token(token, key=key, expiry_ms=expiry_ms, now=current)
    # find_user maps the alias and skips deleted users; None: no such user (any more).
    user = find_user(session, auth_user)
    spend_token(
        session,
        checked,
        user_name=None if user is None else user.user_name,
        enabled=user is not None and user.enabled,
        now=current,
    )
    assert user is not None  # spend_token refuses a name that finds no user
    return user


def spend_token(
    session: Session,
    checked: LoginToken,
    *,
    user_name: str | None,
    enabled: bool,
    now: datetime | None = None,
) -> None:
    """Spend a token `read_token` accepted, for the live user the login names.

    `user_name` is that user's canonical name (None: no such live user) and `enabled`
    whether they may log in. Raises TokenInvalid when the token is another user's,
    UserDisabled, or TokenUsed; the token is spent only when every check passed.
    """
    check_holder(checked, user_name=user_name, enabled=enabled)
    _record_spent(session, checked, now or utcnow())


def check_holder(checked: LoginToken, *, user_name: str | None, enabled: bool) -> None:
    """The checks `spend_token` makes before spending: TokenInvalid unless `user_name` (the
    canonical name of the live user the login names; None: none) is the token's user,
    compared in constant time; then UserDisabled unless `enabled`."""
    if user_name is None or not equals_constant_time(user_name, checked.user_name):
        raise TokenInvalid("Login token does not belong to this user")
    if not enabled:
        raise UserDisabled("User may not log in")
