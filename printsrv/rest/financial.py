"""REST financial services: account balances (admin), the caller's balance and transfers (user).

    GET  /financial/account/balance?type=&name=                        admin
    POST /financial/account/balance?type=&name=&amount=[&details=][&adjust=]   admin
    GET  /financial/balance                                            user (name + UUID)
    POST /financial/transfer?name=&amount=[&comment=]                  user (name + UUID)

Answers are the contract's `{"succes": true[, "result": "9.260000"]}`. Parameters are
checked strictly: an unknown or repeated parameter is refused, so a typo never silently
changes what a request does (and the sender of a transfer can only be the caller).

The POSTs honour an `Idempotency-Key` header: the first answer is stored with the money
change, in one transaction, and a retry with the same key gets it back unapplied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from financial import to_wire
from printsrv import errors
from printsrv.accounts import actions, idempotency
from printsrv.accounts import service as accounting
from printsrv.http import installation_of
from printsrv.rest.guards import require_admin, user_credentials
from printsrv.rest.responses import failure, replied, status_for, success

IDEMPOTENCY_HEADER = "idempotency-key"
T = TypeVar("T")


async def account_balance(request: Request) -> Response:
    """GET /financial/account/balance: the balance of any account (admin)."""
    require_admin(request)
    params = _params(request, required=("type", "name"))
    balance = await _read(request, accounting.balance_of, params["type"], params["name"])
    return success(to_wire(balance))


async def set_account_balance(request: Request) -> Response:
    """POST /financial/account/balance: set or adjust a balance with an ADJUST row (admin)."""
    admin = require_admin(request)
    params = _params(request, required=("type", "name", "amount"), optional=("details", "adjust"))
    change = _balance_change(params, admin)
    installation = installation_of(request)
    keyed = _keyed(request, lambda balance: success(to_wire(balance)))
    if keyed is None:
        return success(to_wire(await actions.change_balance(installation, change)))
    return replied(await actions.change_balance(installation, change, keyed))


async def balance(request: Request) -> Response:
    """GET /financial/balance: the caller's own balance (user)."""
    credentials = user_credentials(request)
    # The caller is checked in the same read: one transaction per request.
    balance = await actions.caller_balance(
        installation_of(request), credentials, check_request=lambda: _params(request)
    )
    return success(to_wire(balance))


async def transfer(request: Request) -> Response:
    """POST /financial/transfer: move credit from the caller to another user (user)."""
    credentials = user_credentials(request)
    query = request.query_params
    # The caller is checked in the transfer's own transaction, and the recipient is found in
    # the same query: one round trip (and still 401 before any 400).
    reply = await actions.transfer(
        installation_of(request),
        sender=credentials,
        recipient=query.get("name", ""),
        amount=query.get("amount", ""),
        comment=query.get("comment", ""),
        check_request=lambda: _params(request, required=("name", "amount"), optional=("comment",)),
        keyed=_keyed(request, lambda _: success()),
    )
    return success() if reply is None else replied(reply)


# --- parsing -------------------------------------------------------------------------------------


def _balance_change(params: Mapping[str, str], admin: str) -> actions.BalanceChange:
    """Check the parameters (type, amount, adjust, details); InvalidInput naming one."""
    adjust = params.get("adjust", "false")
    if adjust not in ("true", "false"):
        raise errors.InvalidInput(
            f"Parameter 'adjust' has value {adjust!r}: use true or false", reason="adjust"
        )
    return actions.BalanceChange(
        account_type=accounting.parse_account_type(params["type"]).value,
        name=params["name"],
        amount=accounting.parse_amount(params["amount"]),
        adjust=adjust == "true",
        comment=accounting.check_comment(params.get("details", "")),
        admin=admin,
    )


def _params(
    request: Request, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, str]:
    """The query parameters, each known, given once, and the required ones not empty."""
    known = (*required, *optional)
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in known:
            expected = ", ".join(known) if known else "none"
            raise errors.InvalidInput(
                f"Parameter {name!r} is not known here (expected: {expected})", reason=name
            )
        if name in found:
            raise errors.InvalidInput(f"Parameter {name!r} is given more than once", reason=name)
        found[name] = value
    for name in required:
        if not found.get(name, "").strip():
            raise errors.InvalidInput(f"Parameter {name!r} is missing", reason=name)
    return found


# --- running a service call -----------------------------------------------------------------------


async def _read(request: Request, call: Callable[..., T], *args: object) -> T:
    """`call(session, *args)` in a read transaction, off the event loop."""
    db = installation_of(request).db

    def run() -> T:
        with db.read() as session:
            return call(session, *args)

    return await db.run(run)


def _keyed(request: Request, render: Callable[[T], Response]) -> idempotency.KeyedRequest[T] | None:
    """The request's Idempotency-Key, what it asks for and how its answers are stored, or
    None without the header. The key is checked by the service, once the caller and the
    parameters are (`idempotency.once`)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    return idempotency.KeyedRequest(
        key=key,
        fingerprint=idempotency.fingerprint(
            request.method, request.url.path, request.query_params.multi_items()
        ),
        render=lambda result: _answer(render(result)),
        refusal=_refusal_answer,
    )


def _answer(response: Response) -> idempotency.Answer:
    return idempotency.Answer(response.status_code, bytes(response.body).decode())


def _refusal_answer(error: errors.PrintsrvError) -> idempotency.Answer | None:
    """A refusal of the change as sent and stored for retries; None for the server's own
    errors (5xx), which roll the whole transaction back so that a retry runs again."""
    status = status_for(error)
    if status >= 500:
        return None
    return _answer(failure(error.message, status))
