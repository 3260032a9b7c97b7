"""`onetime-auth.createToken` as one unit of work: maintenance, the API-key throttle, the key,
the user, the token.

The TTP API key lets its holder log anyone in, so a wrong one is counted against the
client's address in the database (`throttle.record_api_key_failure`), shared by every worker
and machine; once the address has used up `web-login.ttp.apikey.max-failures` in the
window, createToken refuses it (`LoginThrottled`, the 429 row) whatever key it sends, while
other addresses, the LMS among them, go on as before.
"""

from __future__ import annotations

import logging
from datetime import datetime

from printsrv.operations.installation import Installation
from printsrv.operations.status import keep_users_out_in_maintenance
from printsrv.people import throttle, tokens
from printsrv.people.throttle import ThrottlePolicy
from printsrv.platform.models import utcnow

__all__ = ["create_login_token"]

log = logging.getLogger(__name__)


def create_login_token(
    installation: Installation,
    *,
    api_key: str,
    user_name: str,
    address: str,
    now: datetime | None = None,
) -> str:
    """A one-time login token for `user_name`, asked for by the trusted party at `address`.

    Raises UnderMaintenance while users are kept out, LoginThrottled when `address` sent
    too many wrong API keys lately, then what `tokens.issue_token` raises (TtpLoginDisabled,
    ApiKeyRejected, NotFound, UserDisabled). An ApiKeyRejected is counted against the
    address, in a transaction of its own, before it is raised. A caller with the right key
    costs one statement: the address's counter and the user, read together.
    """
    current = now or utcnow()
    snapshot = installation.config.snapshot()
    # A token is a log-in for a user: none is issued while users are kept out.
    keep_users_out_in_maintenance(snapshot)
    policy = ThrottlePolicy.from_config(snapshot)
    try:
        tokens.check_token_caller(api_key=api_key, snapshot=snapshot)
    except tokens.TtpLoginDisabled:
        # A throttled caller learns only that, as if the throttle had been checked first.
        with installation.db.statement(write=False) as connection:
            throttle.check_api_key_caller(connection, address=address, policy=policy, now=current)
        raise
    except tokens.ApiKeyRejected:
        with installation.db.transaction() as session:
            throttle.check_api_key_caller(session, address=address, policy=policy, now=current)
            log.warning("createToken: wrong API key from %s", address)
            throttle.record_api_key_failure(session, address=address, policy=policy, now=current)
        raise
    # The address's counter and the user in one statement (two round trips before); on
    # PostgreSQL without BEGIN and ROLLBACK.
    with installation.db.statement(write=False) as connection:
        user = throttle.check_api_key_caller_and_find_user(
            connection, address=address, user_name=user_name, policy=policy, now=current
        )
    return tokens.token_for(user, user_name=user_name, key=installation.token_key, now=current)
