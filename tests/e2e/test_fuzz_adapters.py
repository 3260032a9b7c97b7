"""Fuzzed bodies through the real server: every answer is in its protocol's own envelope.

The parsers are fuzzed on their own in tests/unit/fuzz; here the same mutated and generated
inputs go over a real socket to a live server on each back-end (PostgreSQL refuses what
SQLite stores, a NUL character for one), so what an adapter makes of a parser's refusal,
and what the services behind it make of what a parser let through, is checked too:

- XML-RPC: HTTP 200 with a methodResponse (a result or a fault, never the internal-error
  fault -32603), or 413 for a body over the cap;
- JSON-RPC: HTTP 200 with answer objects (or nothing, for notifications), never
  "Internal error";
- REST (uploads, reports, release, agents, convert-to): below 500, and every refusal is
  `{"succes": false, "error": "..."}`.
"""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from fuzz_support import JSON_VALUES, ZERO_CROP_BOX, fuzz_settings, mutated
from hypothesis import example, given
from hypothesis import strategies as st
from support import JSONRPC_KEY, LiveServer, open_jsonrpc, set_config

from bench.fuzz_targets import BOUNDARY, SEEDS, agent_printer, strict_loads
from printsrv.agents import registry
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing import queues
from printsrv.printing.options import KNOWN_ATTRIBUTES
from printsrv.rpc.jsonrpc_registry import METHODS as JSONRPC_METHODS
from printsrv.rpc.xmlrpc import INTERNAL_ERROR

TTP_KEY = "fuzz-ttp-api-key-0123456789"
ADMIN = ("admin", "admin-password")


@dataclass
class Target:
    """The live server and the credentials each door wants."""

    server: LiveServer
    client: httpx.Client
    user: tuple[str, str]
    agent: dict[str, str]

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.post(f"{self.server.url}{path}", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def target(installation: Installation) -> Iterator[Target]:
    """Every door open to loopback: JSON-RPC with provisioning, TTP logins, a release
    station, convert-to; a user with a UUID and an agent with a printer."""
    open_jsonrpc(installation, admin=True)
    set_config(
        installation,
        {
            "web-login.ttp.enable": "Y",
            "web-login.ttp.apikey": TTP_KEY,
            "release.station.ip-addresses-allowed": "127.0.0.1/32",
            "api.convert.ip-addresses-allowed": "127.0.0.1/32",
        },
    )
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        uuid = users.issue_uuid(session, "janet", hasher=installation.hasher)
        token = registry.add_agent(session, "fuzzagent", hasher=installation.hasher)
    server = LiveServer(installation).start()
    client = httpx.Client(timeout=60)
    agent = {"Authorization": f"Bearer {token}", "Printsrv-Agent": "fuzzagent"}
    answer = client.post(
        f"{server.url}/restful/v1/agent/printers",
        json={"printers": [agent_printer()]},
        headers=agent,
    )
    assert answer.status_code == 200, answer.text
    with installation.db.transaction() as session:
        # Uploads to "lab" print on the agent's printer: options checked against it, priced,
        # a job queued for the agent; no CUPS needed.
        queues.add_queue(session, "lab", printer="fuzzagent/fuzz")
    yield Target(server, client, ("janet", uuid), agent)
    client.close()
    server.stop()


def assert_rest_envelope(response: httpx.Response) -> None:
    """Below 500, and a refusal in REST's envelope."""
    where = f"{response.request.method} {response.request.url}: {response.status_code}"
    assert response.status_code < 500, f"{where} {response.text}"
    if response.status_code >= 400:
        assert response.headers.get("content-type") == "application/json", where
        body = response.json()
        assert body["succes"] is False, body
        assert isinstance(body["error"], str) and body["error"], body


def assert_xmlrpc_envelope(response: httpx.Response) -> None:
    """A methodResponse: a result, or a fault that is not the internal error."""
    if response.status_code == 413:
        return
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    try:
        xmlrpc.client.loads(response.content)
    except xmlrpc.client.Fault as fault:
        assert fault.faultCode != INTERNAL_ERROR, fault.faultString


def assert_jsonrpc_envelope(response: httpx.Response) -> None:
    """Answer objects (none for notifications), never an internal error."""
    assert response.status_code == 200, response.text
    if not response.content:
        return
    body = strict_loads(response.content)
    for answer in body if isinstance(body, list) else [body]:
        assert answer["jsonrpc"] == "2.0", answer
        assert "result" in answer, answer
        if "error" in answer:
            assert answer["error"]["message"] != "Internal error", answer


# --- XML-RPC -----------------------------------------------------------------------------

XMLRPC_TEXT = st.text(max_size=30).map(lambda s: s.replace("\r", ""))


@fuzz_settings(30)
@given(
    body=mutated("xmlrpc")
    | st.tuples(st.sampled_from([TTP_KEY, "wrong"]) | XMLRPC_TEXT, XMLRPC_TEXT).map(
        lambda p: xmlrpc.client.dumps(p, "onetime-auth.createToken").encode("utf-8", "replace")
    )
)
def test_xmlrpc_answers_every_body_with_a_method_response(target: Target, body: bytes) -> None:
    assert_xmlrpc_envelope(
        target.post("/xmlrpc/v1", content=body, headers={"Content-Type": "text/xml"})
    )


# --- JSON-RPC ----------------------------------------------------------------------------

PARAM_NAMES = [
    "uniqueName", "username", "password", "name", "value", "user", "userGroup", "groupName",
    "startIndex", "itemsPerPage", "ref", "comment", "scope", "printerName", "deleteUsers",
]  # fmt: skip
NASTY_TEXT = st.sampled_from(["", " ", "\x00", "a\x00b", "janet", "x" * 300, "\ud800"[:0] + "é"])
PARAMS = st.dictionaries(
    st.sampled_from(PARAM_NAMES), NASTY_TEXT | JSON_VALUES, max_size=3
) | st.lists(NASTY_TEXT | JSON_VALUES, max_size=3)
CALLS = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.sampled_from(sorted(JSONRPC_METHODS))},
    optional={"params": PARAMS, "id": st.integers(0, 1000)},
)


@fuzz_settings(40)
@given(body=mutated("jsonrpc") | st.one_of(CALLS, st.lists(CALLS, max_size=3)).map(json.dumps))
@example(body=b'{"jsonrpc": "2.0", "id": 1e400, "method": "systemStatus"}')
@example(body=b'{"jsonrpc": "2.0", "id": 1e99999999999999999999, "method": "x"}')
@example(body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "addUserGroup",
                          "params": {"uniqueName": "a\x00b"}}))  # fmt: skip
def test_jsonrpc_answers_every_body_with_answer_objects(target: Target, body: bytes | str) -> None:
    response = target.post(
        "/jsonrpc/v1",
        content=body,
        headers={"X-Auth-Key": JSONRPC_KEY, "Content-Type": "application/json"},
    )
    assert_jsonrpc_envelope(response)


def test_jsonrpc_refuses_an_id_past_a_floats_range_in_json(target: Target) -> None:
    """Found by fuzzing: an id of 1e400 was answered as `"id":Infinity`, which no JSON
    client can read. Such an id is not one the server can echo: an Invalid Request."""
    response = target.post(
        "/jsonrpc/v1",
        content=b'{"jsonrpc": "2.0", "id": 1e400, "method": "systemStatus"}',
        headers={"X-Auth-Key": JSONRPC_KEY, "Content-Type": "application/json"},
    )
    answer = strict_loads(response.content)
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600
    assert answer["error"]["data"]["reason"] == 'member "id" must be a string, a number or null'


# --- REST --------------------------------------------------------------------------------

FORM_TEXT = st.text(max_size=40) | NASTY_TEXT


@fuzz_settings(30)
@given(body=mutated("multipart"))
def test_a_mutated_upload_is_accepted_or_refused_in_the_envelope(
    target: Target, body: bytes
) -> None:
    response = target.post(
        "/restful/v1/documents/print",
        content=body,
        auth=target.user,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}"},
    )
    assert_rest_envelope(response)


IPP_OPTIONS = st.dictionaries(
    st.sampled_from(KNOWN_ATTRIBUTES) | st.text(max_size=8),
    st.sampled_from(["1", "2", "0", "-1", "1-3,5", "3-1", "999999999", "color", "one-sided"])
    | NASTY_TEXT
    | JSON_VALUES,
    max_size=4,
).map(json.dumps)


@fuzz_settings(30)
@given(
    fields=st.fixed_dictionaries(
        {"queue": st.sampled_from(["lab", "webservice"]) | FORM_TEXT},
        optional={"ipp_options": IPP_OPTIONS | FORM_TEXT, "ext_id": FORM_TEXT},
    ),
    name=FORM_TEXT,
)
@example(fields={"queue": "a\x00b"}, name="a.txt")
@example(fields={"queue": "lab", "ext_id": "a\x00b"}, name="a.txt")
@example(fields={"queue": "lab", "ipp_options": '{"page-ranges": "1-999999999"}'}, name="a.txt")
def test_upload_fields_of_any_text_are_accepted_or_refused_in_the_envelope(
    target: Target, fields: dict[str, str], name: str
) -> None:
    response = target.post(
        "/restful/v1/documents/print",
        auth=target.user,
        files={"file": (name, b"Hello from the fuzzer\n")},
        data=fields,
    )
    assert_rest_envelope(response)


@fuzz_settings(30)
@given(body=mutated("report"))
@example(body=b"[" * 20_000)
@example(body=b'{"select": {"date_from": {"ccyy": 100000000000000000000, "mm": 1, "dd": 1}}}')
@example(body=b'{"select": {"date_from": {"ccyy": 1, "mm": 1, "dd": 1, "zzz": "+18"}}}')
@example(body=b'{"select": {"date_to": {"ccyy": 9999, "mm": 12, "dd": 31, "zzz": "-01"}}}')
@example(body=b'{"select": {"account_name": "a\\u0000b"}}')
def test_a_report_selection_is_answered_or_refused_in_the_envelope(
    target: Target, body: bytes
) -> None:
    assert_rest_envelope(target.post("/restful/v1/reports/accounttrx", content=body, auth=ADMIN))


@fuzz_settings(30)
@given(
    body=mutated("release")
    | st.fixed_dictionaries(
        {"printer": st.just("fuzzagent/fuzz") | FORM_TEXT},
        optional={"card": FORM_TEXT, "user": FORM_TEXT, "pin": FORM_TEXT},
    ).map(lambda d: json.dumps(d).encode())
)
@example(body=b"[" * 10_000)
@example(body=b'{"printer": "fuzzagent/fuzz", "card": 1e99999999999999999999}')
@example(body=b'{"printer": "a\\u0000b", "card": "04A1B2C3"}')  # PostgreSQL refuses NUL
def test_a_release_terminal_request_is_answered_in_the_envelope(
    target: Target, body: bytes
) -> None:
    assert_rest_envelope(target.post("/restful/v1/release", content=body))


@fuzz_settings(30)
@given(body=mutated("agents"), path=st.sampled_from(["/printers", "/jobs/1/state"]))
@example(body=b"{" * 10_000, path="/printers")
def test_an_agent_body_is_answered_in_the_envelope(target: Target, body: bytes, path: str) -> None:
    response = target.post(f"/restful/v1/agent{path}", content=body, headers=target.agent)
    assert_rest_envelope(response)


@fuzz_settings(15)
@given(pdf=mutated("pdf"), format=st.sampled_from(["png", "txt", "pdf"]))
def test_convert_to_answers_a_mutated_pdf_or_refuses_in_the_envelope(
    target: Target, pdf: bytes, format: str
) -> None:
    response = target.post(f"/lool/convert-to/{format}", files={"data": ("in.pdf", pdf)})
    assert_rest_envelope(response)


def test_convert_to_refuses_a_page_with_a_zero_crop_box_as_damaged(target: Target) -> None:
    """Found by fuzzing: a crop box of 0 x 0 passed the PDF check (which reads the media
    box) and sizing its picture divided by zero, a 500. Now 422: the document is damaged."""
    response = target.post("/lool/convert-to/png", files={"data": ("in.pdf", ZERO_CROP_BOX)})
    assert response.status_code == 422, response.text
    assert "crop box" in response.json()["error"]


def test_seeds_of_every_rest_door_are_accepted(target: Target) -> None:
    """The fuzzing starts from inputs the doors accept, so mutations reach past the parser."""
    answer = target.post("/restful/v1/release", content=SEEDS["release"][0])
    assert answer.status_code == 401, answer.text  # parsed, the printer found; no such card
    answer = target.post("/restful/v1/reports/accounttrx", content=SEEDS["report"][0], auth=ADMIN)
    assert answer.status_code == 404, answer.text  # parsed; there is no account 'rijk'
    assert "rijk" in answer.json()["error"]
    answer = target.post(
        "/restful/v1/documents/print",
        auth=target.user,
        files={"file": ("a.txt", b"Hello from the fuzzer\n")},
        data={"queue": "lab", "ipp_options": '{"copies": "2", "sides": "two-sided-long-edge"}'},
    )
    assert answer.status_code == 200, answer.text  # printed on the agent's printer
    assert answer.json()["status"] == "printing", answer.text


NUMBER_TEXT = st.sampled_from(["²", "١٢", "0", "5", "-1", "1" * 30, "1" * 5000, " 7 ", "1e3"])
MOMENT_TEXT = st.sampled_from(
    ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+18:00", "9999-12-31T23:59:59-18:00",
     "2024-02-30", "2024-01-01T25:00", "²⁰²⁴-01-01"]
)  # fmt: skip


@fuzz_settings(30)
@given(
    query=st.fixed_dictionaries(
        {},
        optional={
            "limit": NUMBER_TEXT | FORM_TEXT,
            "page": NUMBER_TEXT | FORM_TEXT,
            "created_gte": MOMENT_TEXT | FORM_TEXT,
            "created_lte": MOMENT_TEXT | FORM_TEXT,
            "sort": FORM_TEXT,
            "type": FORM_TEXT,
        },
    ),
    ref=NUMBER_TEXT | FORM_TEXT,
)
@example(query={"limit": "²"}, ref="²")
@example(query={"page": "100000000000000000"}, ref="1")
@example(query={"created_gte": "0001-01-01T00:00:00+18:00"}, ref="1")
@example(query={"created_lte": "9999-12-31T23:59:59-18:00"}, ref="1")
def test_document_log_queries_are_answered_or_refused_in_the_envelope(
    target: Target, query: dict[str, str], ref: str
) -> None:
    url = target.server.url
    for path in ("/restful/v1/documents", "/restful/v1/user/documents"):
        auth = ADMIN if path == "/restful/v1/documents" else target.user
        assert_rest_envelope(target.client.get(f"{url}{path}", params=query, auth=auth))
    path = f"/restful/v1/documents/{quote(ref, safe='')}"
    assert_rest_envelope(target.client.get(f"{url}{path}", auth=ADMIN))


@fuzz_settings(20)
@given(wait=NUMBER_TEXT | FORM_TEXT, page=NUMBER_TEXT | FORM_TEXT, width=NUMBER_TEXT)
@example(wait="²", page="²", width="²")
def test_number_fields_of_agents_and_convert_to_are_answered_in_the_envelope(
    target: Target, wait: str, page: str, width: str
) -> None:
    url = target.server.url
    if wait.strip() and not wait.isdigit():  # a number waits: keep the test quick
        answer = target.client.get(
            f"{url}/restful/v1/agent/jobs/next", params={"wait": wait}, headers=target.agent
        )
        assert_rest_envelope(answer)
    answer = target.post(
        "/lool/convert-to/png",
        files={"data": ("a.txt", b"hello")},
        data={"page": page, "width": width},
    )
    assert_rest_envelope(answer)


AMOUNT_TEXT = st.sampled_from(
    ["1.00", "-1", "0", "1e3", "NaN", "Infinity", "1.0000001", "9" * 40, "²", "1,5", " 2 "]
)


@fuzz_settings(30)
@given(
    query=st.fixed_dictionaries(
        {
            "type": st.sampled_from(["USER", "SHARED", "GROUP"]) | FORM_TEXT,
            "name": st.sampled_from(["janet", "admin"]) | FORM_TEXT,
            "amount": AMOUNT_TEXT | FORM_TEXT,
        },
        optional={"details": FORM_TEXT, "adjust": FORM_TEXT, "comment": FORM_TEXT},
    )
)
@example(query={"type": "USER", "name": "a\x00b", "amount": "1.00"})
@example(query={"type": "USER", "name": "janet", "amount": "1.00", "details": "a\x00b"})
def test_money_parameters_are_answered_or_refused_in_the_envelope(
    target: Target, query: dict[str, str]
) -> None:
    url = f"{target.server.url}/restful/v1/financial"
    answers = [
        target.client.get(f"{url}/account/balance", params=query, auth=ADMIN),
        target.client.post(f"{url}/account/balance", params=query, auth=ADMIN),
        target.client.post(f"{url}/transfer", params=query, auth=target.user),
    ]
    for answer in answers:
        assert_rest_envelope(answer)
