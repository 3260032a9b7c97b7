"""printsrv/accounts/actions.py: a transfer, a user's balance and an administrator's balance
change, each one unit of work, at most once per Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from support import set_config

import financial
from financial import AccountTrx
from printsrv import errors
from printsrv.accounts import actions, idempotency
from printsrv.accounts import service as accounting
from printsrv.accounts.models import IdempotencyKey
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.security import BasicCredentials

D = Decimal
OK = idempotency.Answer(200, '{"succes":true}')


@pytest.fixture
def uuids(installation: Installation) -> dict[str, str]:
    """janet (10.00) and rijk (alias s123456, 0.00), with their UUIDs."""
    found = {}
    with installation.db.transaction() as session:
        for name in ("janet", "rijk"):
            users.add_user(session, name)
            found[name] = users.issue_uuid(session, name, hasher=installation.hasher)
        users.add_alias(session, "s123456", "rijk")
        accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("10"),
            adjust=False,
            comment="start",
            actor=accounting.admin_actor("setup"),
        )
    return found


def balances(installation: Installation) -> dict[str, Decimal]:
    with installation.db.read() as session:
        return {name: accounting.user_balance(session, name) for name in ("janet", "rijk")}


def ledger_rows(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(AccountTrx)) or 0


def keys(installation: Installation) -> list[str]:
    with installation.db.read() as session:
        return list(session.scalars(select(IdempotencyKey.idem_key)))


def refusal(error: errors.PrintsrvError) -> idempotency.Answer | None:
    """As the REST adapter stores refusals: every one but the server's own."""
    if isinstance(error, errors.DatabaseUnavailable):
        return None
    return idempotency.Answer(409, json.dumps({"error": error.message}))


def keyed(key: str, fingerprint: str = "f") -> idempotency.KeyedRequest[None]:
    return idempotency.KeyedRequest(
        key=key, fingerprint=fingerprint, render=lambda _: OK, refusal=refusal
    )


def janet(uuids: dict[str, str]) -> BasicCredentials:
    return BasicCredentials("janet", uuids["janet"])


# --- transfer --------------------------------------------------------------------------------


def test_transfer_moves_the_amount_from_the_sender_to_the_recipient(
    installation: Installation, uuids: dict[str, str]
) -> None:
    answer = asyncio.run(
        actions.transfer(
            installation, sender="janet", recipient="s123456", amount="4.25", comment="lunch"
        )
    )
    assert answer is None
    assert balances(installation) == {"janet": D("5.75"), "rijk": D("4.25")}
    with installation.db.read() as session:
        assert financial.verify(session) == []


def test_transfer_lets_the_sender_in_by_name_and_uuid(
    installation: Installation, uuids: dict[str, str]
) -> None:
    asyncio.run(actions.transfer(installation, sender=janet(uuids), recipient="rijk", amount="1"))
    assert balances(installation) == {"janet": D("9"), "rijk": D("1")}


def test_transfer_refuses_an_amount_below_the_minimum(
    installation: Installation, uuids: dict[str, str]
) -> None:
    set_config(installation, {"financial.user.transfers.amount-min": "2"})
    before = ledger_rows(installation)
    with pytest.raises(errors.InvalidInput, match=r"Transfer refused \(minimum\)") as refused:
        asyncio.run(actions.transfer(installation, sender="janet", recipient="rijk", amount="1.99"))
    assert refused.value.reason == "minimum"
    assert ledger_rows(installation) == before


def test_transfer_refuses_an_amount_not_in_the_wire_form(
    installation: Installation, uuids: dict[str, str]
) -> None:
    with pytest.raises(errors.InvalidInput, match="not a decimal number"):
        asyncio.run(actions.transfer(installation, sender="janet", recipient="rijk", amount="1e0"))
    assert balances(installation)["janet"] == D("10")


def test_transfer_refuses_a_stranger_before_reading_the_request(
    installation: Installation, uuids: dict[str, str]
) -> None:
    checked: list[bool] = []
    with pytest.raises(errors.NotAuthenticated):
        asyncio.run(
            actions.transfer(
                installation,
                sender=BasicCredentials("janet", uuids["rijk"]),
                recipient="rijk",
                amount="not an amount",
                check_request=lambda: checked.append(True),
            )
        )
    assert checked == [], "a stranger learns nothing about what the request should say"


def test_transfer_runs_the_adapters_check_once_the_sender_is_in(
    installation: Installation, uuids: dict[str, str]
) -> None:
    def unknown_parameter() -> None:
        raise errors.InvalidInput("Parameter 'sender' is not known here", reason="sender")

    with pytest.raises(errors.InvalidInput, match="'sender' is not known"):
        asyncio.run(
            actions.transfer(
                installation,
                sender=janet(uuids),
                recipient="rijk",
                amount="1",
                check_request=unknown_parameter,
            )
        )
    assert balances(installation)["janet"] == D("10")


def test_transfer_to_someone_unknown_names_the_rule(
    installation: Installation, uuids: dict[str, str]
) -> None:
    with pytest.raises(errors.NotFound, match=r"recipient-unknown"):
        asyncio.run(
            actions.transfer(installation, sender=janet(uuids), recipient="nobody", amount="1")
        )


# --- at most once per Idempotency-Key ------------------------------------------------------------


def test_a_keyed_transfer_is_made_once_and_its_retry_gets_the_first_answer(
    installation: Installation, uuids: dict[str, str]
) -> None:
    def send() -> idempotency.Reply | None:
        return asyncio.run(
            actions.transfer(
                installation, sender=janet(uuids), recipient="rijk", amount="3", keyed=keyed("k-1")
            )
        )

    assert send() == idempotency.Reply(OK, replayed=False)
    assert send() == idempotency.Reply(OK, replayed=True)
    assert balances(installation) == {"janet": D("7"), "rijk": D("3")}


def test_a_refused_keyed_transfer_stores_its_refusal_for_every_retry(
    installation: Installation, uuids: dict[str, str]
) -> None:
    def send() -> idempotency.Reply | None:
        return asyncio.run(
            actions.transfer(
                installation, sender="janet", recipient="rijk", amount="20", keyed=keyed("gift")
            )
        )

    first = send()
    assert first is not None and not first.replayed
    assert first.answer.status_code == 409 and "sender-below-zero" in first.answer.body
    with installation.db.transaction() as session:
        accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("50"),
            adjust=False,
            comment="top-up",
            actor=accounting.admin_actor("setup"),
        )
    assert send() == idempotency.Reply(first.answer, replayed=True)
    assert balances(installation)["rijk"] == D("0")


def test_a_key_used_for_another_request_is_a_conflict(
    installation: Installation, uuids: dict[str, str]
) -> None:
    asyncio.run(
        actions.transfer(
            installation, sender="janet", recipient="rijk", amount="1", keyed=keyed("k")
        )
    )
    with pytest.raises(errors.Conflict, match="different request"):
        asyncio.run(
            actions.transfer(
                installation,
                sender="janet",
                recipient="rijk",
                amount="2",
                keyed=keyed("k", fingerprint="another"),
            )
        )
    assert balances(installation)["janet"] == D("9")


def test_a_malformed_key_is_refused_and_nothing_moves(
    installation: Installation, uuids: dict[str, str]
) -> None:
    with pytest.raises(errors.InvalidInput, match="Idempotency-Key"):
        asyncio.run(
            actions.transfer(
                installation,
                sender="janet",
                recipient="rijk",
                amount="1",
                keyed=keyed("with space"),
            )
        )
    assert balances(installation)["janet"] == D("10")
    assert keys(installation) == []


def test_an_error_of_the_server_is_not_stored_so_a_retry_runs_again(
    installation: Installation, uuids: dict[str, str]
) -> None:
    def failing(session: object) -> Decimal:
        raise errors.DatabaseUnavailable("the database went away")

    down = idempotency.KeyedRequest(
        key="k-5xx", fingerprint="f", render=lambda _: OK, refusal=refusal
    )
    with pytest.raises(errors.DatabaseUnavailable), installation.db.transaction() as session:
        idempotency.once(session, down, caller="user:janet", work=failing)
    assert keys(installation) == [], "the claim rolled back with the failed change"


# --- balances -------------------------------------------------------------------------------------


def test_a_caller_reads_their_own_balance_by_name_or_alias(
    installation: Installation, uuids: dict[str, str]
) -> None:
    assert asyncio.run(actions.caller_balance(installation, janet(uuids))) == D("10")
    rijk = BasicCredentials("S123456", uuids["rijk"])
    assert asyncio.run(actions.caller_balance(installation, rijk)) == D("0")
    with pytest.raises(errors.NotAuthenticated):
        asyncio.run(actions.caller_balance(installation, BasicCredentials("janet", uuids["rijk"])))


def test_an_administrators_keyed_balance_change_is_made_once(
    installation: Installation, uuids: dict[str, str]
) -> None:
    change = actions.BalanceChange("USER", "janet", D("1.5"), True, "retry", "admin")
    assert asyncio.run(actions.change_balance(installation, change)) == D("11.5")
    request = idempotency.KeyedRequest[Decimal](
        key="batch-42",
        fingerprint="f",
        render=lambda balance: idempotency.Answer(200, financial.to_wire(balance)),
        refusal=refusal,
    )
    first = asyncio.run(actions.change_balance(installation, change, request))
    again = asyncio.run(actions.change_balance(installation, change, request))
    assert first == idempotency.Reply(idempotency.Answer(200, "13.000000"), replayed=False)
    assert again == idempotency.Reply(first.answer, replayed=True)
    assert balances(installation)["janet"] == D("13")
    with installation.db.read() as session:
        assert session.get_one(IdempotencyKey, ("admin:admin", "batch-42")).status_code == 200
