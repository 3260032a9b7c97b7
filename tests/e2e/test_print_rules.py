"""Print rules end to end: REST uploads and releases against a private cupsd over a real
socket, approvals through REST, the CLI and JSON-RPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from colour_support import colour_pdf
from cupsd import parse_backend_options
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import func, select
from support import JSONRPC_KEY, LiveServer, rpc, set_config

from financial.schema import AccountTrx, TrxType
from printsrv.cli import main
from printsrv.documents.models import Document
from printsrv.documents.store import PdfStore
from printsrv.people import users
from printsrv.platform.environment import Environment
from printsrv.printing import approval, queues, rules
from printsrv.printing.models import PrintJob, PrintRule, RuledPrint
from printsrv.release.expiry import remove_expired_held


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    """Queue ``lab`` routes to the capture printer, priced 0.10 a grey side, 0.50 a colour
    side, 0.08 a duplex grey side; JSON-RPC admin methods are open to loopback."""
    setup = printing_setup
    set_config(
        setup.installation,
        {
            "api.jsonrpc.secret-key": JSONRPC_KEY,
            "api.jsonrpc.ext.ip-addresses-allowed": "127.0.0.1/32, ::1",
            "api.jsonrpc.admin.enable": "Y",
        },
    )
    setup.set_cost(
        "capture", "0.10", per_side_color="0.50", per_side_duplex="0.08",
        per_side_duplex_color="0.40",
    )  # fmt: skip
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer="capture")
    live = LiveServer(setup.installation).start()
    yield live
    live.stop()


def add_rule(setup: PrintSetup, name: str, scope: str, condition: str, action: str, **kw: str):
    return rules.add_rule(
        setup.installation.db, name=name, scope=scope, condition=condition, action=action, **kw
    )


def charges(setup: PrintSetup) -> int:
    with setup.installation.db.read() as session:
        return session.scalar(
            select(func.count()).select_from(AccountTrx).where(
                AccountTrx.trx_type == TrxType.PRINT_OUT
            )
        )  # fmt: skip


def ruled(setup: PrintSetup) -> list[RuledPrint]:
    with setup.installation.db.read() as session:
        return list(session.scalars(select(RuledPrint).order_by(RuledPrint.id)))


def user_documents(server: LiveServer, setup: PrintSetup) -> dict[int, dict[str, Any]]:
    response = httpx.get(f"{server.url}/restful/v1/user/documents?type=in", auth=setup.auth)
    assert response.status_code == 200, response.text
    return {entry["id"]: entry for entry in response.json()}


def approve(server: LiveServer, ref: int | str, verb: str = "approve", **data: str):
    return httpx.post(
        f"{server.url}/restful/v1/documents/{ref}/{verb}", auth=ADMIN, data=data, timeout=30
    )


def backend_options(setup: PrintSetup, job: PrintJob) -> dict[str, str]:
    env = setup.cups.read_env("capture", job.cups_job_id)
    return parse_backend_options(env["OPTIONS"])


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


# -- refuse ---------------------------------------------------------------------------------------


def test_a_refusing_rule_answers_422_charges_nothing_and_logs_the_document_as_refused(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "no-theses", "queue:lab", "pages>5", "refuse", message="Max 5 pages here")
    response = upload(server.url, setup.auth, "thesis.pdf", pdf_bytes(6), queue="lab")
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "Max 5 pages here"
    assert setup.jobs() == [] and charges(setup) == 0
    assert setup.balance() == Decimal("10.00")
    [row] = ruled(setup)
    assert (row.state, row.rules, row.cost) == ("refused", "no-theses", Decimal(0))
    entry = user_documents(server, setup)[row.document_id]
    assert entry["status"] == "refused"
    assert entry["approval"]["rules"] == ["no-theses"]
    assert entry["approval"]["message"] == "Max 5 pages here"
    # A document the rule does not meet prints as before.
    small = upload(server.url, setup.auth, "short.pdf", pdf_bytes(5), queue="lab")
    assert small.status_code == 200 and small.json()["status"] == "printing", small.text


def test_a_refusing_rule_stops_a_rest_release_too(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    held = upload(server.url, setup.auth, "held.pdf", pdf_bytes(2))  # webservice: the inbox
    document_id = held.json()["id"]
    add_rule(setup, "no-copies", "printer:capture", "copies>3", "refuse")
    released = httpx.post(
        f"{server.url}/restful/v1/documents/{document_id}/print",
        auth=setup.auth,
        data={"printer": "capture", "ipp_options": json.dumps({"copies": "4"})},
    )
    assert released.status_code == 422, released.text
    assert "no-copies" in released.json()["error"]
    assert setup.jobs() == [] and charges(setup) == 0
    assert [(r.document_id, r.state) for r in ruled(setup)] == [(document_id, "refused")]


# -- grayscale and duplex -------------------------------------------------------------------------


def test_a_grayscale_rule_prints_colour_in_monochrome_at_the_grey_price(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "grey-colour", "all", "color", "grayscale")
    colour = json.dumps({"print-color-mode": "color"})
    response = upload(server.url, setup.auth, "poster.pdf", colour_pdf("red-text", "red-text"),
                      queue="lab", ipp_options=colour)  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "printing" and body["rules"] == ["grey-colour"]
    assert body["cost"] == "0.200000"  # 2 grey sides at 0.10, not 2 colour ones at 0.50
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed", job.message
    assert backend_options(setup, job)["print-color-mode"] == "monochrome"
    assert setup.balance() == Decimal("9.80")
    # Asked for grey, or grey only, the document does not meet the rule.
    grey = upload(server.url, setup.auth, "memo.pdf", pdf_bytes(1), queue="lab", ipp_options=colour)
    assert grey.json()["status"] == "printing" and "rules" not in grey.json(), grey.text


def test_a_duplex_rule_prints_two_sided_at_the_duplex_price_on_release(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    held = upload(server.url, setup.auth, "notes.pdf", pdf_bytes(4))
    add_rule(setup, "save-paper", "all", "pages>2", "duplex")
    released = httpx.post(
        f"{server.url}/restful/v1/documents/{held.json()['id']}/print",
        auth=setup.auth,
        data={"printer": "capture", "ipp_options": json.dumps({"print-color-mode": "monochrome"})},
    )
    assert released.status_code == 200, released.text
    assert released.json()["cost"] == "0.320000"  # 4 duplex grey sides at 0.08
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed", job.message
    assert job.sheets == 2
    assert backend_options(setup, job)["sides"] == "two-sided-long-edge"


# -- hold and approval ----------------------------------------------------------------------------


def test_a_held_print_waits_uncharged_until_approved_through_rest(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "big-jobs", "all", "sheets>3", "hold", message="Big job: a teacher approves")
    response = upload(server.url, setup.auth, "big.pdf", pdf_bytes(4), queue="lab")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["cost"]) == ("waiting", "0.000000")
    assert body["message"] == "Big job: a teacher approves"
    document_id = body["id"]
    assert setup.jobs() == [] and charges(setup) == 0
    entry = user_documents(server, setup)[document_id]
    assert entry["status"] == "waiting for approval"
    assert entry["approval"]["state"] == "waiting"

    # Only the admin approves, and only a waiting document.
    assert httpx.post(f"{server.url}/restful/v1/documents/{document_id}/approve",
                      auth=setup.auth).status_code == 401  # fmt: skip
    too_long = approve(server, document_id, comment="x" * 501)
    assert too_long.status_code == 400 and "Comment" in too_long.json()["error"]
    assert [r.state for r in ruled(setup)] == ["waiting"]
    approved = approve(server, document_id, comment="fine")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["cost"] == "0.400000"  # 4 grey pages at 0.10
    job = setup.wait_job(setup.jobs()[0].id)
    assert job.state == "completed", job.message
    assert charges(setup) == 1
    entry = user_documents(server, setup)[document_id]
    assert entry["approval"]["state"] == "approved"
    assert entry["approval"]["comment"] == "fine"
    assert entry["status"] == "completed"

    again = approve(server, document_id)
    assert again.status_code == 409
    assert "not waiting for approval" in again.json()["error"]
    assert approve(server, 999999).status_code == 404
    assert charges(setup) == 1


def test_a_print_held_for_approval_outlives_the_release_hold_time(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    # The inbox sweep (release.hold-hours) once removed a document that waited for an
    # approver, whose approval then answered 404.
    setup = printing_setup
    add_rule(setup, "hold-all", "all", "pages>0", "hold")
    waiting = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="lab").json()["id"]
    forgotten = upload(server.url, setup.auth, "b.pdf", pdf_bytes(1)).json()["id"]  # no queue
    with setup.installation.db.transaction() as session:
        for document_id in (waiting, forgotten):
            session.get(Document, document_id).created_at -= timedelta(hours=3)
    store = PdfStore(setup.installation.env.home)
    assert remove_expired_held(setup.installation.db, store, hold_hours=1) == 1
    with setup.installation.db.read() as session:
        assert session.get(Document, forgotten).store is False
        assert session.get(Document, waiting).store is True
    approved = approve(server, waiting)
    assert approved.status_code == 200, approved.text
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"


def test_approval_refuses_when_the_balance_no_longer_covers_the_print(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "hold-all", "all", "pages>0", "hold")
    body = upload(server.url, setup.auth, "a.pdf", pdf_bytes(3), queue="lab").json()
    assert body["status"] == "waiting"
    setup.set_balance("0.10")  # spent elsewhere since the hold
    refused = approve(server, body["id"])
    assert refused.status_code == 402, refused.text
    assert setup.jobs() == [] and charges(setup) == 0
    assert [r.state for r in ruled(setup)] == ["waiting"]  # still waiting
    setup.set_balance("5.00")
    assert approve(server, body["id"]).status_code == 200
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"
    assert charges(setup) == 1


def test_refuse_beats_hold_beats_changes_and_changes_combine(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "a-grey", "all", "pages>1", "grayscale")
    add_rule(setup, "b-duplex", "all", "pages>1", "duplex")
    add_rule(setup, "c-hold", "all", "pages>3", "hold")
    add_rule(setup, "d-refuse", "all", "pages>5", "refuse")
    doc = colour_pdf("red-text", "red-text", "red-text", "red-text", "red-text", "red-text")

    refused = upload(server.url, setup.auth, "six.pdf", doc, queue="lab")
    assert refused.status_code == 422 and "d-refuse" in refused.json()["error"]

    held = upload(server.url, setup.auth, "four.pdf", colour_pdf(*["red-text"] * 4), queue="lab")
    assert held.json()["status"] == "waiting" and held.json()["rules"] == ["c-hold"]

    changed = upload(server.url, setup.auth, "two.pdf", colour_pdf("red-text", "red-text"),
                     queue="lab")  # fmt: skip
    assert changed.json()["status"] == "printing", changed.text
    assert changed.json()["rules"] == ["a-grey", "b-duplex"]
    assert changed.json()["cost"] == "0.160000"  # one duplex sheet, grey: 2 x 0.08
    job = setup.wait_job(setup.jobs()[0].id)
    options = backend_options(setup, job)
    assert options["sides"] == "two-sided-long-edge"
    assert options["print-color-mode"] == "monochrome"

    # The held print keeps its changes: approved, it prints grey and two-sided.
    approved = approve(server, held.json()["id"])
    assert approved.json()["cost"] == "0.320000", approved.text
    job = setup.wait_job(setup.jobs()[1].id)
    assert backend_options(setup, job)["sides"] == "two-sided-long-edge"


def test_scopes_pick_the_printer_queue_and_group(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    with setup.installation.db.transaction() as session:
        users.add_group(session, "pupils")
        queues.add_queue(session, "hall", printer="capture")
    add_rule(setup, "pupils-one-page", "group:pupils", "pages>1", "refuse")
    add_rule(setup, "lab-pdf-only", "queue:lab", "type:text/*", "refuse")
    assert upload(server.url, setup.auth, "two.pdf", pdf_bytes(2), queue="lab").status_code == 200
    text = upload(server.url, setup.auth, "notes.txt", b"hello\n", queue="lab")
    assert text.status_code == 422 and "lab-pdf-only" in text.json()["error"]
    assert upload(server.url, setup.auth, "n.txt", b"hello\n", queue="hall").status_code == 200
    with setup.installation.db.transaction() as session:
        users.add_member(session, "pupils", setup.user)
    refused = upload(server.url, setup.auth, "two.pdf", pdf_bytes(2), queue="hall")
    assert refused.status_code == 422 and "pupils-one-page" in refused.json()["error"]


# -- approve and deny through the CLI and JSON-RPC -------------------------------------------------


def test_deny_and_approve_through_the_cli(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    process_env: Environment,
) -> None:
    setup = printing_setup
    add_rule(setup, "hold-all", "all", "pages>0", "hold")
    first = upload(server.url, setup.auth, "one.pdf", pdf_bytes(1), queue="lab").json()["id"]
    second = upload(server.url, setup.auth, "two.pdf", pdf_bytes(1), queue="lab",
                    ext_id="ref-2").json()["id"]  # fmt: skip

    code, output = cli("document", "deny", str(first), "--comment", "Not course work")
    assert code == 0, output
    assert f"Document {first} denied" in output
    code, output = cli("document", "approve", "ext_id=ref-2")
    assert code == 0, output
    assert f"Document {second} approved: printing on capture, charged 0.100000" in output
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"

    code, output = cli("document", "approve", str(first))
    assert code == 1 and f"Document {first} is not waiting for approval" in output
    entries = user_documents(server, setup)
    assert entries[first]["status"] == "denied"
    assert entries[first]["approval"]["comment"] == "Not course work"
    assert charges(setup) == 1


def test_approve_and_deny_through_jsonrpc(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    added = rpc(server, "addPrintRule", {"name": "hold-all", "scope": "all",
                                         "condition": "pages>0", "action": "hold"})  # fmt: skip
    assert added["result"]["data"]["name"] == "hold-all", added
    first = upload(server.url, setup.auth, "one.pdf", pdf_bytes(1), queue="lab").json()["id"]
    second = upload(server.url, setup.auth, "two.pdf", pdf_bytes(1), queue="lab").json()["id"]

    approved = rpc(server, "approveDocument", {"ref": first})
    data = approved["result"]["data"]
    assert (data["state"], data["cost"], data["jobState"]) == ("approved", "0.100000", "submitted")
    denied = rpc(server, "denyDocument", {"ref": str(second), "comment": "no"})
    assert denied["result"]["data"]["state"] == "denied"

    again = rpc(server, "approveDocument", {"ref": second})
    assert again["error"]["code"] == -32002, again  # Conflict
    assert again["error"]["message"] == f"Document {second} is not waiting for approval"
    assert again["error"]["data"]["reason"] == "ref"
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"
    assert charges(setup) == 1


def test_two_approvals_at_once_charge_and_print_once(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "hold-all", "all", "pages>0", "hold")
    document_id = upload(server.url, setup.auth, "a.pdf", pdf_bytes(2), queue="lab").json()["id"]
    start = threading.Barrier(4)
    answers: list[int] = []

    def approve_now() -> None:
        start.wait()
        answers.append(approve(server, document_id).status_code)

    threads = [threading.Thread(target=approve_now) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409, 409, 409]
    assert len(setup.jobs()) == 1 and charges(setup) == 1
    assert setup.balance() == Decimal("9.80")  # 2 grey pages at 0.10
    assert setup.wait_job(setup.jobs()[0].id).state == "completed"


# -- bad input ------------------------------------------------------------------------------------


BAD_RULES = [
    (("x", "--scope", "printer:nope", "--if", "pages>1", "--then", "hold"), "Printer 'nope'"),
    (("x", "--scope", "queue:nope", "--if", "pages>1", "--then", "hold"), "Queue 'nope'"),
    (("x", "--scope", "group:nope", "--if", "pages>1", "--then", "hold"), "Group 'nope'"),
    (("x", "--scope", "everyone", "--if", "pages>1", "--then", "hold"), "Scope 'everyone'"),
    (("x", "--scope", "all", "--if", "weight>1", "--then", "hold"), "Condition 'weight>1'"),
    (("x", "--scope", "all", "--if", "pages>many", "--then", "hold"), "Condition 'pages>many'"),
    (("x", "--scope", "all", "--if", "type:pdf", "--then", "hold"), "Condition 'type:pdf'"),
    (("x", "--scope", "all", "--if", "pages>1", "--then", "staple"), "Action 'staple'"),
    (("bad name", "--scope", "all", "--if", "pages>1", "--then", "hold"), "Rule name"),
    (("taken", "--scope", "all", "--if", "pages>1", "--then", "hold"), "'taken' already exists"),
]


def test_bad_rules_are_refused_by_the_cli_naming_the_field_and_nothing_is_written(
    printing_setup: PrintSetup,  # noqa: F811
    process_env: Environment,
) -> None:
    add_rule(printing_setup, "taken", "all", "pages>100", "refuse")
    for args, expected in BAD_RULES:
        code, output = cli("rule", "add", *args)
        assert code == 1, (args, output)
        assert expected in output, (args, output)
    code, output = cli("rule", "remove", "nope")
    assert code == 1 and "Rule 'nope' does not exist" in output
    with printing_setup.installation.db.read() as session:
        assert list(session.scalars(select(PrintRule.name))) == ["taken"]


def test_bad_rules_are_refused_by_jsonrpc_naming_the_field(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    base = {"name": "r", "scope": "all", "condition": "pages>1", "action": "hold"}
    for change, reason in (
        ({"condition": "pages>"}, "if"),
        ({"action": "burn"}, "then"),
        ({"scope": "printer:"}, "scope"),
        ({"name": ""}, "name"),
    ):
        answer = rpc(server, "addPrintRule", {**base, **change})
        assert answer["error"]["code"] == -32602, answer
        assert answer["error"]["data"]["reason"] == reason, answer
    unknown = rpc(server, "addPrintRule", {**base, "scope": "group:nobody"})
    assert unknown["error"]["code"] == -32001, unknown
    assert rpc(server, "removePrintRule", {"name": "nope"})["error"]["code"] == -32001
    assert rpc(server, "listPrintRules")["result"]["data"]["rules"] == []
    with printing_setup.installation.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PrintRule)) == 0


def test_rules_are_added_listed_and_removed_through_jsonrpc(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    for params in (
        {"name": "two-sided", "scope": "printer:capture", "condition": "pages>1",
         "action": "duplex"},
        {"name": "lab-cap", "scope": "queue:lab", "condition": "pages > 5", "action": "refuse",
         "message": "At most 5 pages in the lab"},
    ):  # fmt: skip
        added = rpc(server, "addPrintRule", params)
        assert "error" not in added, added
    assert added["result"]["data"] == {
        "@type": "PRINT_RULE",
        "name": "lab-cap",
        "scope": "queue:lab",
        "condition": "pages>5",
        "action": "refuse",
        "message": "At most 5 pages in the lab",
    }
    listed = rpc(server, "listPrintRules")["result"]["data"]
    assert listed["@type"] == "PRINT_RULES"
    # Strongest action first: the refusal before the change, whatever the names.
    assert [(r["name"], r["action"]) for r in listed["rules"]] == [
        ("lab-cap", "refuse"),
        ("two-sided", "duplex"),
    ]
    taken = rpc(server, "addPrintRule", {"name": "lab-cap", "scope": "all",
                                         "condition": "color", "action": "hold"})  # fmt: skip
    assert taken["error"]["data"]["reason"] == "name", taken

    # The rule added over JSON-RPC is the one a print meets.
    refused = upload(server.url, setup.auth, "six.pdf", pdf_bytes(6), queue="lab")
    assert refused.status_code == 422 and refused.json()["error"] == "At most 5 pages in the lab"

    removed = rpc(server, "removePrintRule", {"name": "lab-cap"})
    assert removed["result"]["data"]["code"] == 0, removed
    assert [r["name"] for r in rpc(server, "listPrintRules")["result"]["data"]["rules"]] == [
        "two-sided"
    ]
    again = rpc(server, "removePrintRule", {"name": "lab-cap"})
    assert again["error"]["message"] == "Rule 'lab-cap' does not exist", again
    printed = upload(server.url, setup.auth, "six.pdf", pdf_bytes(6), queue="lab")
    assert printed.status_code == 200 and printed.json()["status"] == "printing", printed.text
    assert printed.json()["rules"] == ["two-sided"]


def test_rule_list_remove_and_test_through_the_cli(
    printing_setup: PrintSetup,  # noqa: F811
    process_env: Environment,
    tmp_path: Any,
) -> None:
    setup = printing_setup
    setup.set_cost("capture", "0.10", per_side_duplex="0.05")
    code, output = cli("rule", "add", "two-sided", "--scope", "printer:capture", "--if",
                       "pages>1", "--then", "duplex")  # fmt: skip
    assert code == 0, output
    code, output = cli("rule", "add", "big", "--scope", "all", "--if", "pages>2", "--then",
                       "hold", "--message", "Ask a teacher")  # fmt: skip
    assert code == 0, output
    code, output = cli("rule", "list")
    assert code == 0, output
    assert output.index("big") < output.index("two-sided")  # hold before changes
    assert "Ask a teacher" in output

    poster = tmp_path / "poster.pdf"
    poster.write_bytes(colour_pdf("red-text", "red-text", "red-text"))
    code, output = cli("rule", "test", "--user", setup.user, "--printer", "capture", str(poster))
    assert code == 0, output
    assert "meets big" in output and "meets two-sided" in output
    assert "decision: hold" in output
    assert "sides=two-sided-long-edge" in output
    assert "price: 0.200000" in output  # one duplex sheet (2 x 0.05) and a last side (0.10)
    code, output = cli("rule", "test", "--user", "nobody", "--printer", "capture", str(poster))
    assert code == 1 and "nobody" in output
    with setup.installation.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert setup.jobs() == []

    code, output = cli("rule", "remove", "big")
    assert code == 0, output
    assert [r.name for r in rules.list_rules(setup.installation.db)] == ["two-sided"]


def test_a_held_or_refused_upload_retried_with_its_idempotency_key_gets_the_first_answer(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    add_rule(setup, "hold-big", "all", "pages>2", "hold")
    add_rule(setup, "refuse-huge", "all", "pages>4", "refuse")

    documents = {3: pdf_bytes(3), 5: pdf_bytes(5)}  # a retry sends the same bytes

    def send(key: str, pages: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/restful/v1/documents/print",
            auth=setup.auth,
            headers={"Idempotency-Key": key},
            files={"file": ("doc.pdf", documents[pages])},
            data={"queue": "lab"},
            timeout=60,
        )

    first = send("held-1", 3)
    again = send("held-1", 3)
    assert first.json()["status"] == "waiting", first.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    refused = send("refused-1", 5)
    retried = send("refused-1", 5)
    assert (refused.status_code, retried.status_code) == (422, 422)
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert [r.state for r in ruled(setup)] == ["waiting", "refused"]
    assert charges(setup) == 0


def test_an_approval_gives_up_on_a_cupsd_that_never_answers_and_refunds(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    # An approval submits from a thread (submit_job_sync), where pycups used to wait for a
    # hung cupsd for ever. The CUPS server here takes the connection and never answers.
    setup = printing_setup
    add_rule(setup, "hold-all", "all", "pages>0", "hold")
    body = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), queue="lab").json()
    assert body["status"] == "waiting"
    with socket.create_server(("127.0.0.1", 0)) as silent:
        hung = f"127.0.0.1:{silent.getsockname()[1]}"
        set_config(setup.installation, {"cups.server": hung, "cups.timeout-secs": "1"})
        setup.installation.config.refresh()
        decided: list[approval.Decision] = []

        def approve_it() -> None:
            decided.append(
                approval.approve_document(setup.installation, str(body["id"]), admin="test")
            )

        worker = threading.Thread(target=approve_it, daemon=True)  # a hang fails, not blocks
        worker.start()
        worker.join(10)
        assert decided, "the approval still waits for the hung cupsd after 10 s"
    (decision,) = decided
    assert (decision.state, decision.job_state) == ("approved", "failed")
    assert decision.message == f"CUPS server '{hung}' is unavailable: no answer within 1 s"
    (job,) = setup.jobs()
    assert (job.state, job.message) == ("failed", decision.message)
    assert setup.balance() == Decimal("10.00")  # charged, then refunded
