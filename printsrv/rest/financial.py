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
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from financial import to_wire
from printsrv import errors
from printsrv.accounts import idempotency
from printsrv.accounts import service as accounting
from printsrv.http import installation_of
from printsrv.rest.guards import authenticate_caller, require_admin
from printsrv.rest.responses import failure, status_for, success

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
    change = _BalanceChange.parse(params, admin)

    def start(_session: Session) -> tuple[str, Callable[[Session], Response]]:
        return f"admin:{admin}", lambda session: success(to_wire(change.apply(session)))

    return await _once(request, start)


async def balance(request: Request) -> Response:
    """GET /financial/balance: the caller's own balance (user)."""

    def own_balance(session: Session) -> Decimal:
        # The caller is checked in the same read: one transaction per request.
        user, _ = authenticate_caller(session, request)
        _params(request)
        return accounting.user_balance(session, user.user_name)

    return success(to_wire(await _read(request, own_balance)))


async def transfer(request: Request) -> Response:
    """POST /financial/transfer: move credit from the caller to another user (user)."""

    def start(session: Session) -> tuple[str, Callable[[Session], Response]]:
        # The caller is checked in the transfer's own transaction, and the recipient is
        # found in the same query: one round trip (and still 401 before any 400).
        user, (recipient,) = authenticate_caller(
            session, request, request.query_params.get("name", "")
        )
        params = _params(request, required=("name", "amount"), optional=("comment",))
        amount = accounting.parse_amount(params["amount"])
        settings = accounting.settings_of(installation_of(request).config.snapshot())

        def apply(session: Session) -> Response:
            accounting.transfer_credit(
                session,
                sender=user.user_name,
                recipient=recipient or params["name"],
                amount=amount,
                comment=params.get("comment", ""),
                settings=settings,
            )
            return success()

        return f"user:{user.user_name}", apply

    return await _once(request, start)


# --- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BalanceChange:
    """A parsed POST /financial/account/balance."""

    account_type: str
    name: str
    amount: Decimal
    adjust: bool
    details: str
    admin: str

    @classmethod
    def parse(cls, params: Mapping[str, str], admin: str) -> _BalanceChange:
        """Check the parameters (type, amount, adjust, details); InvalidInput naming one."""
        adjust = params.get("adjust", "false")
        if adjust not in ("true", "false"):
            raise errors.InvalidInput(
                f"Parameter 'adjust' has value {adjust!r}: use true or false", reason="adjust"
            )
        return cls(
            account_type=accounting.parse_account_type(params["type"]).value,
            name=params["name"],
            amount=accounting.parse_amount(params["amount"]),
            adjust=adjust == "true",
            details=accounting.check_comment(params.get("details", "")),
            admin=admin,
        )

    def apply(self, session: Session) -> Decimal:
        """Make the change; return the resulting balance."""
        return accounting.change_balance(
            session,
            account_type=self.account_type,
            name=self.name,
            amount=self.amount,
            adjust=self.adjust,
            comment=self.details,
            actor=accounting.admin_actor(self.admin),
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


Start = Callable[[Session], tuple[str, Callable[[Session], Response]]]


async def _once(request: Request, start: Start) -> Response:
    """Run a change in one transaction, at most once per Idempotency-Key.

    `start(session)` checks the caller and the request (raising refuses it, nothing is
    stored) and returns the caller's idempotency scope and `apply`. Without the header,
    `apply(session)` just runs. With it, the key is claimed, `apply` runs in a savepoint
    and its answer (a refusal included) is stored with the change; a retry gets that
    answer with `Idempotent-Replayed: true`. Errors of the server (5xx) are not stored:
    the whole transaction rolls back and a retry runs again.
    """
    installation = installation_of(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:

        def run_plain() -> Response:
            with installation.db.transaction() as session:
                _, apply = start(session)
                return apply(session)

        return await installation.db.run(run_plain)
    print_ = idempotency.fingerprint(
        request.method, request.url.path, request.query_params.multi_items()
    )

    def run_once() -> tuple[idempotency.Answer, bool]:
        with installation.db.transaction() as session:
            caller, apply = start(session)
            idempotency.check_key(key)
            stored = idempotency.claim(session, caller=caller, key=key, fingerprint=print_)
            if stored is not None:
                return stored, True
            try:
                with session.begin_nested():
                    response = apply(session)
            except errors.PrintsrvError as error:
                if status_for(error) >= 500:
                    raise
                response = failure(error.message, status_for(error))
            answer = idempotency.Answer(response.status_code, bytes(response.body).decode())
            idempotency.record(session, caller=caller, key=key, answer=answer)
            return answer, False

    answer, replayed = await installation.db.run(run_once)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(answer.body, answer.status_code, headers=headers, media_type="application/json")
