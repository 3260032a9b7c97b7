"""A token login on PostgreSQL as one statement: check, spend, clear, end, start.

A login used to be a transaction of several statements, and on PostgreSQL each statement,
and the BEGIN and COMMIT around them, is a round trip that costs the server's process more
than the database's work on it. Here the whole login is one statement, run in autocommit
mode (`Database.statement`), so it is its own transaction and takes one round trip:

    probe     LOGIN_PROBE: the user the name resolves to and both throttle counters
    allowed   the probe's user, if it is the token's, live, enabled and not throttled
    spent     the token's digest inserted for an allowed user; ON CONFLICT DO NOTHING,
              so of two logins with one token, on any machine, exactly one gets a row
    forgot    the user's failure counter deleted, if the token was spent
    ended     the session the browser held deleted, if the token was spent
    started   the new session's row, if the token was spent

The final SELECT returns the probe's row and whether a session started. Python then makes
the same checks as the multi-statement login (`logins.log_in_with_token`) in the same
order, on what the probe read, to pick the refusal to raise; the statement wrote nothing
unless all of them pass. All parts see one snapshot, as the statements of one transaction
at READ COMMITTED would not, which only narrows the races the multi-statement login had.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, exists, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert

from printsrv.people import sessions, throttle, tokens
from printsrv.people.models import LoginThrottle, SpentLoginToken, WebSession
from printsrv.people.sessions import ActiveSession
from printsrv.people.throttle import ThrottlePolicy
from printsrv.platform.models import UTCDateTime

__all__ = ["log_in"]


def _statement() -> Select[Any]:
    probe = throttle.LOGIN_PROBE.cte("probe")
    allowed = (
        select(probe.c.id)
        .where(
            probe.c.user_name == bindparam("token_user"),
            probe.c.enabled.is_(True),
            probe.c.deleted_at.is_(None),
            # Not throttled: the same test as throttle._refuse_if_used_up, NULL-safe.
            or_(
                probe.c.user_failures.is_(None),
                probe.c.user_failures < bindparam("user_limit"),
                probe.c.user_window <= bindparam("cutoff", type_=UTCDateTime()),
            ),
            or_(
                probe.c.address_failures.is_(None),
                probe.c.address_failures < bindparam("address_limit"),
                probe.c.address_window <= bindparam("cutoff", type_=UTCDateTime()),
            ),
        )
        .cte("allowed")
    )
    spent = (
        insert(SpentLoginToken)
        .from_select(
            ["digest", "user_name", "spent_at", "purge_after"],
            select(
                bindparam("digest", type_=SpentLoginToken.digest.type),
                bindparam("token_user", type_=SpentLoginToken.user_name.type),
                bindparam("now", type_=UTCDateTime()),
                bindparam("purge_after", type_=UTCDateTime()),
            ).select_from(allowed),
        )
        .on_conflict_do_nothing()
        .returning(SpentLoginToken.digest)
        .cte("spent")
    )
    was_spent = exists(select(spent.c.digest))
    forgot = (
        delete(LoginThrottle)
        .where(LoginThrottle.key == bindparam("forget_key"), was_spent)
        .returning(LoginThrottle.key)
        .cte("forgot")
    )
    ended = (
        delete(WebSession)
        .where(
            WebSession.id_hash == bindparam("replaced", type_=WebSession.id_hash.type), was_spent
        )
        .returning(WebSession.id_hash)
        .cte("ended")
    )
    columns = sessions.SESSION_COLUMNS
    started = (
        insert(WebSession)
        .from_select(
            list(columns),
            select(
                *(
                    allowed.c.id
                    if name == "user_id"
                    else bindparam(f"session_{name}", type_=WebSession.__table__.c[name].type)
                    for name in columns
                )
            ).select_from(allowed.join(spent, true())),
        )
        .returning(WebSession.id_hash)
        .cte("started")
    )
    # PostgreSQL runs every data-modifying CTE to completion, read or not; SQLAlchemy only
    # renders the ones the SELECT names, hence the counts.
    return select(
        *probe.c,
        select(func.count()).select_from(started).scalar_subquery().label("started"),
        select(func.count()).select_from(forgot).scalar_subquery().label("forgot"),
        select(func.count()).select_from(ended).scalar_subquery().label("ended"),
    )


_LOG_IN = _statement()


def log_in(
    connection: Connection,
    *,
    auth_user: str,
    checked: tokens.LoginToken,
    address: str,
    replaces: str | None,
    policy: ThrottlePolicy,
    idle: timedelta,
    now: datetime,
) -> tuple[str, ActiveSession]:
    """Log in with a token `tokens.read_token` accepted, in one statement on `connection`
    (autocommit); returns (the session id for the cookie, the session).

    Raises LoginThrottled, then TokenInvalid, UserDisabled or TokenUsed, as the
    multi-statement login would; nothing is written when it raises.
    """
    # The session row is made up front and stored only if the token is spent; its user
    # id comes from the statement's own look-up of the user.
    session_id, row = sessions.new_session_row(
        None, idle=idle, method="token", address=address, now=now
    )
    params = throttle.login_probe_params(user_name=auth_user, address=address)
    params.update(
        token_user=checked.user_name,
        user_limit=policy.user_failures,
        address_limit=policy.address_failures,
        cutoff=now - policy.window,
        digest=checked.digest,
        now=now,
        purge_after=checked.created_at + tokens.RETENTION,
        forget_key="user:" + checked.user_name[:100],
        replaced=sessions.id_digest(replaces),
        **{f"session_{name}": value for name, value in row.items() if name != "user_id"},
    )
    result = connection.execute(_LOG_IN, params).one()
    user = throttle.judge_login_probe(result, policy=policy, now=now)
    live = user if user is not None and not user.deleted else None
    tokens.check_holder(
        checked,
        user_name=live.user_name if live else None,
        enabled=live is not None and live.enabled,
    )
    if not result.started:
        raise tokens.TokenUsed("Login token has been used already")
    assert live is not None
    active = ActiveSession(
        live.id, live.user_name, live.full_name, row["csrf_token"], row["expires_at"]
    )
    return session_id, active
