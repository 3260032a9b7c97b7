"""REST financial services over a real socket: balances (admin), balance and transfer (user)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select
from support import JSONRPC_KEY, LiveServer, rpc, set_config

import financial
from financial import AccountTrx
from printsrv.accounts import service as accounting
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import User

ADMIN = ("admin", "s3cret-admin")
D = Decimal


class Api:
    """The REST services of one live server, with the test's users' credentials."""

    def __init__(self, server: LiveServer, uuids: dict[str, str]) -> None:
        self.server = server
        self.base = f"{server.url}/restful/v1"
        self.uuids = uuids

    def user(self, name: str) -> tuple[str, str]:
        return name, self.uuids[name]

    def get_balance(self, query: str, auth: object = ADMIN) -> httpx.Response:
        return httpx.get(f"{self.base}/financial/account/balance?{query}", auth=auth)  # type: ignore[arg-type]

    def set_balance(self, query: str, auth: object = ADMIN, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.base}/financial/account/balance?{query}",
            auth=auth,  # type: ignore[arg-type]
            headers=headers,
        )

    def my_balance(self, who: str) -> httpx.Response:
        return httpx.get(f"{self.base}/financial/balance", auth=self.user(who))

    def transfer(self, who: str, query: str, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.base}/financial/transfer?{query}", auth=self.user(who), headers=headers
        )


@pytest.fixture
def overrides() -> dict[str, str]:
    """Config properties a test sets before the server starts (parametrize to change)."""
    return {}


@pytest.fixture
def api(installation: Installation, overrides: dict[str, str]) -> Iterator[Api]:
    """janet (10.00), rijk (alias s123456, 0.00), dora (disabled), group staff, SHARED Physics."""
    set_config(
        installation,
        {"api.restful.auth.username": ADMIN[0], "api.restful.auth.password": ADMIN[1], **overrides},
    )
    uuids = {}
    with installation.db.transaction() as session:
        for name in ("janet", "rijk", "dora"):
            users.add_user(session, name)
            uuids[name] = users.issue_uuid(session, name, hasher=installation.hasher)
        users.add_alias(session, "s123456", "rijk")
        users.set_enabled(session, "dora", False)
        users.add_group(session, "staff")
        accounting.add_shared_account(session, "Physics")
        accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("10"),
            adjust=False,
            comment="start",
            actor=accounting.admin_actor("setup"),
        )
    server = LiveServer(installation).start()
    yield Api(server, uuids)
    server.stop()


def rows(installation: Installation, comment: str | None = None) -> int:
    query = select(func.count()).select_from(AccountTrx)
    if comment is not None:
        query = query.where(AccountTrx.comment == comment)
    with installation.db.read() as session:
        return session.scalar(query) or 0


def balance_of(installation: Installation, name: str) -> Decimal:
    with installation.db.read() as session:
        return accounting.balance_of(session, "USER", name)


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["succes", "error"] and body["succes"] is False
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


# --- GET /financial/account/balance ---------------------------------------------------------------


def test_account_balance_has_the_contract_shape_byte_for_byte(api: Api) -> None:
    response = api.get_balance("type=USER&name=janet")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"succes":true,"result":"10.000000"}'


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("type=USER&name=S123456", "rijk"),
        ("type=GROUP&name=Staff", "staff"),
        ("type=SHARED&name=Physics", "Physics"),
    ],
)
def test_account_balance_of_every_type_with_alias_mapping(api: Api, query: str, name: str) -> None:
    assert api.get_balance(query).json() == {"succes": True, "result": "0.000000"}


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("type=USER&name=nobody", 404, "No USER account named 'nobody'"),
        ("type=SHARED&name=physics", 404, "No SHARED account"),
        ("type=PERSON&name=janet", 400, "not one of USER, GROUP, SHARED"),
        ("type=user&name=janet", 400, "not one of USER, GROUP, SHARED"),
        ("type=USER", 400, "'name' is missing"),
        ("type=USER&name=", 400, "'name' is missing"),
        ("name=janet", 400, "'type' is missing"),
        ("type=USER&name=janet&name=rijk", 400, "more than once"),
        ("type=USER&name=janet&user=rijk", 400, "'user' is not known"),
    ],
)
def test_account_balance_refusals(api: Api, query: str, status: int, fragment: str) -> None:
    assert fragment in refused(api.get_balance(query), status)


def test_admin_services_need_the_admin(api: Api) -> None:
    assert refused(api.get_balance("type=USER&name=janet", auth=None), 401)
    response = api.get_balance("type=USER&name=janet", auth=("admin", "wrong"))
    assert refused(response, 401) and response.headers["www-authenticate"].startswith("Basic")
    # A user's UUID is no admin credential.
    assert refused(api.get_balance("type=USER&name=janet", auth=api.user("janet")), 401)


@pytest.mark.parametrize("overrides", [{"api.restful.ip-addresses-allowed": "10.0.0.0/8"}])
def test_admin_services_refuse_addresses_outside_the_allowlist(
    api: Api, installation: Installation
) -> None:
    assert "not allowed" in refused(api.get_balance("type=USER&name=janet"), 403)
    assert refused(api.set_balance("type=USER&name=janet&amount=1"), 403)
    assert balance_of(installation, "janet") == D("10")


# --- POST /financial/account/balance --------------------------------------------------------------


def test_set_balance_writes_an_adjust_row_and_answers_the_new_balance(
    api: Api, installation: Installation
) -> None:
    response = api.set_balance("type=USER&name=S123456&amount=2.50&details=my%20text")
    assert response.status_code == 200
    assert response.content == b'{"succes":true,"result":"2.500000"}'
    with installation.db.read() as session:
        account = financial.get_account(session, "USER", "rijk")
        [row] = financial.latest_transactions(session, account, 1)
    assert (row.trx_type, row.amount, row.comment) == ("ADJUST", D("2.5"), "my text")
    assert (row.actor_kind, row.actor_name) == ("admin", "admin")


def test_adjust_true_adds_a_possibly_negative_amount(api: Api) -> None:
    assert api.set_balance("type=USER&name=janet&amount=-2.50&adjust=true").json() == {
        "succes": True,
        "result": "7.500000",
    }
    assert api.set_balance("type=GROUP&name=STAFF&amount=3&adjust=true").json()["result"] == (
        "3.000000"
    )
    assert api.set_balance("type=SHARED&name=Physics&amount=-1").json()["result"] == "-1.000000"


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("type=USER&name=janet&amount=1e3", 400, "'1e3' is not a decimal number"),
        ("type=USER&name=janet&amount=NaN", 400, "'NaN' is not a decimal number"),
        ("type=USER&name=janet&amount=Infinity", 400, "not a decimal number"),
        ("type=USER&name=janet&amount=-Infinity", 400, "not a decimal number"),
        ("type=USER&name=janet&amount=1.0000001", 400, "more than 6 decimal places"),
        ("type=USER&name=janet&amount=%2B1", 400, "not a decimal number"),
        ("type=USER&name=janet&amount=1%2C5", 400, "not a decimal number"),
        ("type=USER&name=janet&amount=", 400, "'amount' is missing"),
        ("type=USER&name=janet&amount=10000000000000", 400, "more than 12 integer digits"),
        ("type=USER&name=janet&amount=1&adjust=yes", 400, "use true or false"),
        ("type=USER&name=janet&amount=0&adjust=true", 400, "zero"),
        ("type=USER&name=nobody&amount=1", 404, "No USER account named 'nobody'"),
        ("type=SHARED&name=Chemistry&amount=1", 404, "No SHARED account"),
        ("type=USER&name=janet&amount=1&comment=x", 400, "'comment' is not known"),
    ],
)
def test_set_balance_refusals_change_nothing(
    api: Api, installation: Installation, query: str, status: int, fragment: str
) -> None:
    before = rows(installation)
    assert fragment in refused(api.set_balance(query), status)
    assert rows(installation) == before
    assert balance_of(installation, "janet") == D("10")


# --- GET /financial/balance -----------------------------------------------------------------------


def test_my_balance_has_the_contract_shape(api: Api) -> None:
    response = api.my_balance("janet")
    assert response.content == b'{"succes":true,"result":"10.000000"}'
    assert api.my_balance("rijk").json() == {"succes": True, "result": "0.000000"}


def test_an_alias_with_the_uuid_is_the_user(api: Api) -> None:
    response = httpx.get(f"{api.base}/financial/balance", auth=("S123456", api.uuids["rijk"]))
    assert response.json() == {"succes": True, "result": "0.000000"}


@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("janet", "97008e2c-d8b2-11e9-aa13-406186940c49"),
        ("nobody", "97008e2c-d8b2-11e9-aa13-406186940c49"),
        ADMIN,
        "rijk-uuid-for-janet",
        "dora",
    ],
)
def test_user_services_need_the_user_name_and_uuid(api: Api, auth: object) -> None:
    if auth == "rijk-uuid-for-janet":
        auth = ("janet", api.uuids["rijk"])
    elif auth == "dora":  # disabled
        auth = api.user("dora")
    response = httpx.get(f"{api.base}/financial/balance", auth=auth)  # type: ignore[arg-type]
    message = refused(response, 401)
    assert message == ("Unknown user or wrong UUID" if auth else message)
    response = httpx.post(f"{api.base}/financial/transfer?name=rijk&amount=1", auth=auth)  # type: ignore[arg-type]
    assert refused(response, 401)


def test_my_balance_takes_no_parameters(api: Api) -> None:
    response = httpx.get(f"{api.base}/financial/balance?name=rijk", auth=api.user("janet"))
    assert "'name' is not known" in refused(response, 400)


# --- POST /financial/transfer ---------------------------------------------------------------------


def test_transfer_has_the_contract_shape_and_moves_the_credit(
    api: Api, installation: Installation
) -> None:
    response = api.transfer("janet", "name=s123456&amount=4.25&comment=lunch")
    assert response.status_code == 200
    assert response.content == b'{"succes":true}'
    assert api.my_balance("janet").json()["result"] == "5.750000"
    assert api.my_balance("rijk").json()["result"] == "4.250000"
    assert rows(installation, "lunch") == 2
    with installation.db.read() as session:
        assert financial.verify(session) == []


@pytest.mark.parametrize(
    ("overrides", "query", "rule", "status"),
    [
        ({"financial.user.transfers.enable": "N"}, "name=rijk&amount=1", "transfers-disabled", 403),
        ({}, "name=rijk&amount=0", "amount-not-positive", 400),
        ({}, "name=rijk&amount=-1", "amount-not-positive", 400),
        ({"financial.user.transfers.amount-min": "2"}, "name=rijk&amount=1.99", "minimum", 400),
        ({"financial.user.transfers.amount-max": "5"}, "name=rijk&amount=5.01", "maximum", 400),
        ({}, "name=JANET&amount=1", "self", 400),
        ({}, "name=nobody&amount=1", "recipient-unknown", 404),
        ({}, "name=dora&amount=1", "recipient-disabled", 409),
        ({}, "name=s123456&amount=10.000001", "sender-below-zero", 409),
    ],
)
def test_every_refused_transfer_names_its_rule_and_moves_nothing(
    api: Api, installation: Installation, query: str, rule: str, status: int
) -> None:
    before = rows(installation)
    message = refused(api.transfer("janet", query), status)
    assert message.startswith(f"Transfer refused ({rule}): "), message
    assert rows(installation) == before
    assert balance_of(installation, "janet") == D("10")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("name=rijk&amount=1&sender=rijk", "'sender' is not known"),
        ("name=rijk&amount=1&user=dora", "'user' is not known"),
        ("name=rijk&amount=1e0", "not a decimal number"),
        ("name=rijk", "'amount' is missing"),
        ("amount=1", "'name' is missing"),
    ],
)
def test_the_sender_is_always_the_caller(
    api: Api, installation: Installation, query: str, fragment: str
) -> None:
    assert fragment in refused(api.transfer("rijk", query), 400)
    assert balance_of(installation, "janet") == D("10")


# --- Idempotency-Key ------------------------------------------------------------------------------


def test_a_retried_transfer_returns_the_first_answer_and_applies_once(
    api: Api, installation: Installation
) -> None:
    first = api.transfer("janet", "name=rijk&amount=3&comment=once", **{"Idempotency-Key": "k-1"})
    retry = api.transfer("janet", "amount=3&comment=once&name=rijk", **{"Idempotency-Key": "k-1"})
    assert first.status_code == retry.status_code == 200
    assert first.content == retry.content == b'{"succes":true}'
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert rows(installation, "once") == 2
    assert balance_of(installation, "janet") == D("7")


def test_a_retried_balance_change_returns_the_first_balance(
    api: Api, installation: Installation
) -> None:
    query = "type=USER&name=janet&amount=1.5&adjust=true&details=retry"
    answers = [api.set_balance(query, **{"Idempotency-Key": "batch-42"}) for _ in range(3)]
    assert {a.content for a in answers} == {b'{"succes":true,"result":"11.500000"}'}
    assert rows(installation, "retry") == 1
    # Without a key, the same request is a new one.
    assert api.set_balance(query).json()["result"] == "13.000000"


def test_the_first_refusal_is_the_answer_to_every_retry(
    api: Api, installation: Installation
) -> None:
    key = {"Idempotency-Key": "gift-1"}
    assert "sender-below-zero" in refused(api.transfer("janet", "name=rijk&amount=20", **key), 409)
    api.set_balance("type=USER&name=janet&amount=50")
    retry = api.transfer("janet", "name=rijk&amount=20", **key)
    assert "sender-below-zero" in refused(retry, 409)
    assert retry.headers["idempotent-replayed"] == "true"
    assert balance_of(installation, "rijk") == D("0")


def test_a_key_is_per_caller_and_per_request(api: Api, installation: Installation) -> None:
    key = {"Idempotency-Key": "same"}
    assert api.transfer("janet", "name=rijk&amount=1", **key).status_code == 200
    api.set_balance("type=USER&name=rijk&amount=5")
    assert api.transfer("rijk", "name=janet&amount=1", **key).status_code == 200
    assert "different request" in refused(api.transfer("janet", "name=rijk&amount=2", **key), 409)
    assert balance_of(installation, "janet") == D("10")


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "ключ"])
def test_a_malformed_key_is_refused(api: Api, installation: Installation, key: str) -> None:
    response = httpx.post(
        f"{api.base}/financial/transfer?name=rijk&amount=1",
        auth=api.user("janet"),
        headers=[("Idempotency-Key", key.encode())],
    )
    assert "Idempotency-Key" in refused(response, 400)
    assert balance_of(installation, "janet") == D("10")


# --- eraseUser takes the account along ------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "api.jsonrpc.secret-key": JSONRPC_KEY,
            "api.jsonrpc.ext.ip-addresses-allowed": "127.0.0.1/32",
            "api.jsonrpc.admin.enable": "Y",
        }
    ],
)
def test_erase_user_renames_the_user_account(api: Api, installation: Installation) -> None:
    answer = rpc(api.server, "eraseUser", {"uniqueName": "janet"})
    assert "error" not in answer, json.dumps(answer)
    with installation.db.read() as session:
        labels = [a.label for a in financial.list_accounts(session, account_type="USER")]
        [erased] = session.scalars(select(User.user_name).where(User.user_name.like("erased-%")))
    assert "USER/janet" not in labels
    assert f"USER/{erased}" in labels
    assert api.get_balance(f"type=USER&name={erased}").json()["result"] == "10.000000"
    assert "No USER account" in refused(api.get_balance("type=USER&name=janet"), 404)
