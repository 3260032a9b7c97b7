"""The OpenAPI 3.1 description of /restful/v1, generated from the routes themselves.

The paths, methods and path parameters come from the routes that `rest_routes()` declares
(the ones the router dispatches on); what a route cannot say about itself (who may call it,
its query and body, its answers) is declared once per operation in `OPERATIONS`, keyed by
method and path (OpenAPI's form: ``{job}`` for the route's ``{job:int}``). Generating the
description refuses a route without a declaration and a declaration without a route, so the
two cannot drift apart
(tests/unit/rest/test_openapi_routes.py). Nothing here runs on a request's way to its view:
the description is built on the first `GET /openapi.json` (or `/docs`) and kept.

    GET /restful/v1/openapi.json   the description (public)
    GET /restful/v1/docs           the same, as a page to read (HTML, no script)
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from starlette.convertors import IntegerConvertor
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from printsrv import __version__

JSON: Final = "application/json"
IGNORED_METHODS: Final = frozenset({"HEAD"})  # Starlette answers HEAD for every GET

# --- schemas -----------------------------------------------------------------------------------

MONEY = {
    "type": "string",
    "pattern": r"^-?[0-9]+\.[0-9]+$",
    "description": "A decimal amount as text (6 decimals), never a JSON number",
    "examples": ["9.260000"],
}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_TEXT = {"type": ["string", "null"]}


def _object(properties: dict[str, Any], required: Iterable[str] | None = None) -> dict[str, Any]:
    """An object with these properties; all required unless said otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties if required is None else required),
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: Final[dict[str, Any]] = {
    "Failure": {
        **_object({"succes": {"const": False}, "error": {"type": "string"}}),
        "description": 'Every REST refusal: `{"succes": false, "error": "..."}` (sic: "succes", '
        "as SavaPage spells it)",
    },
    "Done": {
        **_object({"succes": {"const": True}}),
        "description": 'A change made: `{"succes": true}`',
    },
    "Balance": {
        **_object({"succes": {"const": True}, "result": MONEY}),
        "description": 'A balance: `{"succes": true, "result": "9.260000"}`',
    },
    "Job": _object(
        {
            "printer": {"type": "string"},
            "state": {"type": "string"},
            "cups_job_id": NULLABLE_INT,
            "pages": {"type": "integer"},
            "copies": {"type": "integer"},
            "sheets": {"type": "integer"},
            "cost": MONEY,
            "refund": MONEY,
            "reason": NULLABLE_TEXT,
            "finished": NULLABLE_TEXT,
        }
    ),
    "Approval": _object(
        {
            "state": {"type": "string"},
            "status": {"type": "string"},
            "rules": {"type": "array", "items": {"type": "string"}},
            "message": NULLABLE_TEXT,
            "printer": NULLABLE_TEXT,
            "comment": NULLABLE_TEXT,
            "decided": NULLABLE_TEXT,
        }
    ),
    "LogEntry": _object(
        {
            "id": {"type": "integer"},
            "ext_id": {"type": "string"},
            "type": {"type": "string", "enum": ["in", "out", "print", "pdf", "ticket"]},
            "title": {"type": "string"},
            "created": {"type": "string", "description": "2019-09-13T09:18:38+0200"},
            "store": {"type": "boolean"},
            "pages_color": NULLABLE_INT,
            "pages_grayscale": NULLABLE_INT,
            "status": {"type": "string"},
            "job": ref("Job"),
            "approval": ref("Approval"),
        },
        required=["id", "ext_id", "type", "title", "created", "store"],
    ),
    "LogPage": {"type": "array", "items": ref("LogEntry")},
    "Accepted": _object(
        {
            "id": {"type": "integer"},
            "ext_id": NULLABLE_TEXT,
            "title": {"type": "string"},
            "pages": {"type": "integer"},
            "pages_color": NULLABLE_INT,
            "pages_grayscale": NULLABLE_INT,
            "queue": {"type": "string"},
            "status": {"type": "string"},
            "cost": MONEY,
            "error": {"type": "string"},
            "message": {"type": "string"},
            "rules": {"type": "array", "items": {"type": "string"}},
        },
        required=["id", "ext_id", "title", "pages", "queue", "status", "cost"],
    ),
    "Decision": _object(
        {
            "id": {"type": "integer"},
            "state": {"type": "string"},
            "printer": NULLABLE_TEXT,
            "cost": MONEY,
            "job_state": {"type": "string"},
            "error": {"type": "string"},
        },
        required=["id", "state", "printer", "cost"],
    ),
    "WaitingPrint": _object(
        {
            "ref": {"type": "string", "description": "What /approve and /deny take"},
            "ext_id": NULLABLE_TEXT,
            "user": {"type": "string"},
            "title": {"type": "string"},
            "pages": {"type": "integer"},
            "printer": {"type": "string"},
            "queue": {"type": "string"},
            "cost": MONEY,
            "rules": {"type": "array", "items": {"type": "string"}},
            "message": {"type": "string"},
            "waiting_since": {"type": "string", "description": "2019-09-13T09:18:38+0200"},
        }
    ),
    "WaitingList": {"type": "array", "items": ref("WaitingPrint")},
    "HttpRequest": _object(
        {
            "remoteAddr": {"type": "string"},
            "remoteHost": {"type": "string"},
            "remotePort": NULLABLE_INT,
            "localAddr": {"type": "string"},
            "serverName": {"type": "string"},
            "serverPort": NULLABLE_INT,
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    ),
    "ReportRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "select": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "account_type": {"type": ["string", "null"], "enum": ["USER", "SHARED", None]},
                    "account_name": NULLABLE_TEXT,
                    "text": NULLABLE_TEXT,
                    "trx_type": NULLABLE_TEXT,
                    "date_from": {"anyOf": [ref("Day"), {"type": "null"}]},
                    "date_to": {"anyOf": [ref("Day"), {"type": "null"}]},
                },
            },
            "sort": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "field": NULLABLE_TEXT,
                    "ascending": {"type": ["boolean", "null"]},
                },
            },
            "media_type": {"type": ["string", "null"], "enum": ["CSV", "PDF", None]},
        },
    },
    "Day": {
        **_object(
            {
                "ccyy": {"type": "integer"},
                "mm": {"type": "integer"},
                "dd": {"type": "integer"},
                "zzz": {"type": "string", "examples": ["+01"]},
            },
            required=["ccyy", "mm", "dd"],
        ),
        "additionalProperties": False,
    },
    "TerminalRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "printer": {"type": "string"},
            "card": {"type": "string"},
            "user": {"type": "string"},
            "pin": {"type": "string"},
            "documents": {
                "oneOf": [
                    {"const": "all"},
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 100,
                        "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    },
                ]
            },
        },
        "required": ["printer"],
    },
    "TerminalAnswer": _object(
        {
            "succes": {"const": True},
            "result": _object(
                {
                    "user": {"type": "string"},
                    "printer": {"type": "string"},
                    "documents": {
                        "type": "array",
                        "items": _object(
                            {
                                "id": {"type": "integer"},
                                "title": {"type": "string"},
                                "pages": {"type": "integer"},
                                "price": {"anyOf": [MONEY, {"type": "null"}]},
                                "created": {"type": "string"},
                                "problem": NULLABLE_TEXT,
                            }
                        ),
                    },
                    "released": {
                        "type": "array",
                        "items": _object(
                            {
                                "id": {"type": "integer"},
                                "status": {"type": "string"},
                                "cost": MONEY,
                                "message": NULLABLE_TEXT,
                            }
                        ),
                    },
                },
                required=["user", "printer", "documents"],
            ),
        }
    ),
    "JobRequest": {
        "type": "object",
        "description": 'Start a job (`type`, `argument`) or poll one (`key`); with `"async": '
        "false` (the default) the answer waits for the job's end. When `api.jobs.jwt-secret` "
        'is set, the body is `{"token": "<JWT>"}` carrying this object.',
        "properties": {
            "async": {"type": "boolean"},
            "type": {
                "type": "string",
                "enum": ["report.accounttrx", "backup", "users.sync", "convert"],
            },
            "argument": {},
            "key": {"type": "string"},
            "token": {"type": "string"},
        },
    },
    "JobAnswer": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "end": {"type": "boolean"},
            "progress": {"type": ["integer", "number", "null"]},
            "urls": {"type": "object", "additionalProperties": {"type": "string"}},
            "error": {"type": "integer"},
            "message": {"type": "string"},
        },
        "required": ["key", "end"],
    },
    "JobTokenRefused": {
        **_object({"error": {"const": -8}, "message": {"type": "string"}}),
        "description": "A JWT body that does not verify",
    },
    "AgentJob": _object(
        {
            "id": {"type": "integer"},
            "claim": {"type": "string"},
            "printer": {"type": "string"},
            "title": {"type": "string"},
            "user": {"type": "string"},
            "options": {"type": "object"},
            "pages": {"type": "integer"},
            "pdf_sha256": {"type": "string"},
            "attempt": {"type": "integer"},
            "lease_until": {"type": "string"},
            "pdf_base64": {"type": "string"},
        },
        required=(
            "id",
            "claim",
            "printer",
            "title",
            "user",
            "options",
            "pages",
            "pdf_sha256",
            "attempt",
            "lease_until",
        ),
    ),
}

# --- who may call ------------------------------------------------------------------------------

SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "admin": {
        "type": "http",
        "scheme": "basic",
        "description": "The REST admin: `api.restful.auth.username` and `api.restful.auth."
        "password`, from an address in `api.restful.ip-addresses-allowed` (void: any).",
    },
    "user": {
        "type": "http",
        "scheme": "basic",
        "description": "A user: their name (or alias) and their UUID (`printsrv user uuid`) "
        "as the Basic user name and password. Closed while in maintenance (503).",
    },
    "agentToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A print agent's token (`printsrv agent add`), with `Printsrv-Agent`.",
    },
    "agentName": {"type": "apiKey", "in": "header", "name": "Printsrv-Agent"},
}

# Who calls: its security requirement and the refusals that come with it. Credentials need
# TLS off loopback (403), so 403 comes with every kind of credential.
ACCESS: Final[dict[str, tuple[list[dict[str, list[str]]], tuple[int, ...]]]] = {
    "public": ([], ()),
    "admin": ([{"admin": []}], (401, 403)),
    "user": ([{"user": []}], (401, 403, 503)),
    "admin or user": ([{"admin": []}, {"user": []}], (401, 403, 503)),
    "agent": ([{"agentToken": [], "agentName": []}], (401, 403)),
    "station": ([], (401, 403, 429, 503)),  # by address (release.station.ip-addresses-allowed)
}

ERRORS: Final[dict[int, str]] = {
    400: "A parameter or the body is malformed (the error names it)",
    401: "Missing or wrong credentials",
    403: "Not allowed: the caller's address, TLS off loopback, or the caller may not do this",
    404: "Not found",
    409: "Conflict: the state forbids it (a balance that does not cover a transfer, a job "
    "that ended, a claim that lapsed), or an Idempotency-Key reused for another request",
    410: "Gone: the job's results expired",
    413: "The body is too large",
    415: "The upload is not a document printsrv can convert",
    429: "Too many failed attempts: wait for Retry-After",
    503: "Maintenance (user services), or a part printsrv needs is away: Retry-After",
}


# --- declarations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A successful answer: its description and {media type: schema}."""

    description: str
    content: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """What a route cannot say about itself."""

    summary: str
    access: str
    ok: dict[int, Answer]
    errors: tuple[int, ...] = ()
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    required_query: tuple[str, ...] = ()
    body: dict[str, Any] | None = None  # {media type: schema}
    body_required: bool = False
    idempotent_key: bool = False  # honours an Idempotency-Key header
    path: dict[str, str] = field(default_factory=dict)  # path parameter -> description
    tag: str = ""


def json_answer(description: str, schema: dict[str, Any]) -> dict[int, Answer]:
    return {200: Answer(description, {JSON: {"schema": schema}})}


def _pdf(description: str) -> dict[int, Answer]:
    return {200: Answer(description, {"application/pdf": {"schema": {}}})}


LOG_QUERY: Final = {
    "sort": {"type": "string", "enum": ["-created", "+created"]},
    "type": {"type": "string", "enum": ["all", "in", "out", "print", "pdf", "ticket"]},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "page": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "created_gte": {"type": "string", "examples": ["2019-09-13", "2019-09-13T09:18:38+02:00"]},
    "created_lte": {"type": "string", "examples": ["2019-09-13"]},
}
REF = {"ref": "A document id, or `ext_id=<ext_id>`"}
ACCOUNT = {
    "type": {"type": "string", "enum": ["USER", "SHARED"]},
    "name": {"type": "string", "minLength": 1},
}
DECISION_BODY = {
    "application/x-www-form-urlencoded": {
        "schema": {"type": "object", "properties": {"comment": {"type": "string"}}}
    }
}
AGENT_JOB = {"job": "The job's id, from /agent/jobs/next"}
CLAIM_BODY = {JSON: {"schema": _object({"claim": {"type": "string", "minLength": 1}})}}

OPERATIONS: Final[dict[tuple[str, str], Operation]] = {
    ("GET", "/documents"): Operation(
        "The document log, a page at a time",
        "admin",
        json_answer("A page of the log, newest first unless sort=+created", ref("LogPage")),
        errors=(400,),
        query=LOG_QUERY,
        tag="documents",
    ),
    ("POST", "/documents/print"): Operation(
        "Upload a document: held in the inbox, or printed through a routed queue",
        "user",
        json_answer(
            "The document as accepted (and its print, through a routed queue)", ref("Accepted")
        ),
        errors=(400, 404, 409, 413, 415),
        body={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "queue": {"type": "string"},
                        "ext_id": {"type": "string"},
                        "ipp_options": {"type": "string", "description": "JSON object"},
                    },
                    "required": ["file"],
                }
            }
        },
        body_required=True,
        idempotent_key=True,
        tag="documents",
    ),
    ("GET", "/documents/waiting"): Operation(
        "The prints waiting for approval, the longest waiting first",
        "admin",
        json_answer("A page of the waiting prints, with the quoted cost", ref("WaitingList")),
        errors=(400,),
        query={
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "offset": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        },
        tag="documents",
    ),
    ("GET", "/documents/{ref}"): Operation(
        "One entry of the document log",
        "admin",
        json_answer("The entry, as the log shows it", ref("LogEntry")),
        errors=(404,),
        path=REF,
        tag="documents",
    ),
    ("GET", "/documents/{ref}/pdf"): Operation(
        "A document's PDF", "admin", _pdf("The PDF"), errors=(404,), path=REF, tag="documents"
    ),
    ("POST", "/documents/{ref}/print"): Operation(
        "Print a held document on a printer",
        "user",
        json_answer("The document and its print", ref("Accepted")),
        errors=(400, 404, 409),
        query={"printer": {"type": "string"}, "ipp_options": {"type": "string"}},
        body={
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "printer": {"type": "string"},
                        "ipp_options": {"type": "string", "description": "JSON object"},
                    },
                }
            }
        },
        idempotent_key=True,
        path=REF,
        tag="documents",
    ),
    ("POST", "/documents/{ref}/approve"): Operation(
        "Approve a print a rule held: charge and print it",
        "admin",
        json_answer("The decision", ref("Decision")),
        errors=(400, 404, 409),
        query={"comment": {"type": "string"}},
        body=DECISION_BODY,
        path=REF,
        tag="documents",
    ),
    ("POST", "/documents/{ref}/deny"): Operation(
        "Deny a print a rule held, with a reason",
        "admin",
        json_answer("The decision", ref("Decision")),
        errors=(400, 404, 409),
        query={"comment": {"type": "string"}},
        body=DECISION_BODY,
        path=REF,
        tag="documents",
    ),
    ("POST", "/financial/transfer"): Operation(
        "Move credit from the caller to another user",
        "user",
        json_answer("Transferred", ref("Done")),
        errors=(400, 404, 409),  # 409 too for a transfer the balance does not cover
        query={
            "name": {"type": "string", "minLength": 1},
            "amount": {"type": "string", "examples": ["1.50"]},
            "comment": {"type": "string"},
        },
        required_query=("name", "amount"),
        idempotent_key=True,
        tag="financial",
    ),
    ("GET", "/financial/account/balance"): Operation(
        "The balance of a user or shared account",
        "admin",
        json_answer("The balance", ref("Balance")),
        errors=(400, 404),
        query=ACCOUNT,
        required_query=("type", "name"),
        tag="financial",
    ),
    ("POST", "/financial/account/balance"): Operation(
        "Set (or, with adjust=true, change) an account's balance",
        "admin",
        json_answer("The new balance", ref("Balance")),
        errors=(400, 404, 409),
        query={
            **ACCOUNT,
            "amount": {"type": "string", "examples": ["2.50", "-1.25"]},
            "details": {"type": "string"},
            "adjust": {"type": "string", "enum": ["true", "false"]},
        },
        required_query=("type", "name", "amount"),
        idempotent_key=True,
        tag="financial",
    ),
    ("GET", "/financial/balance"): Operation(
        "The caller's own balance",
        "user",
        json_answer("The balance", ref("Balance")),
        errors=(400,),
        tag="financial",
    ),
    ("GET", "/system/version"): Operation(
        "The server's name, version and build",
        "public",
        {
            200: Answer(
                "`printsrv 0.1.0 (Build 20261123)`",
                {"text/plain": {"schema": {"type": "string"}}},
            )
        },
        tag="system",
    ),
    ("GET", "/tests/http/request"): Operation(
        "The request as the server sees it (credentials and cookies hidden)",
        "public",
        json_answer("The client, the server and the headers", ref("HttpRequest")),
        tag="system",
    ),
    ("POST", "/tests/echo"): Operation(
        "The body, sent back (inert types only)",
        "admin",
        {
            200: Answer(
                "The body as sent; any type but text/plain and JSON comes back as octet-stream",
                {
                    "text/plain": {"schema": {"type": "string"}},
                    JSON: {"schema": {}},
                    "application/octet-stream": {"schema": {}},
                },
            )
        },
        errors=(413,),
        body={
            "text/plain": {"schema": {"type": "string"}},
            JSON: {"schema": {}},
        },
        tag="system",
    ),
    ("GET", "/user/documents"): Operation(
        "The caller's own uploads and prints, as the log shows them",
        "user",
        json_answer("A page of the caller's log", ref("LogPage")),
        errors=(400,),
        query=LOG_QUERY,
        tag="documents",
    ),
    ("POST", "/reports/accounttrx"): Operation(
        "The account transactions, as CSV (streamed) or PDF",
        "admin",
        {
            200: Answer(
                "The report, as an attachment",
                {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/pdf": {"schema": {}},
                },
            )
        },
        errors=(400, 404, 413),  # 404: an account that does not exist
        body={JSON: {"schema": ref("ReportRequest")}},
        body_required=True,
        tag="reports",
    ),
    ("POST", "/release"): Operation(
        "A terminal at a printer: list a person's held documents, or release them",
        "station",
        json_answer("The person, the held documents and what was released", ref("TerminalAnswer")),
        errors=(400, 404, 409, 413),
        body={JSON: {"schema": ref("TerminalRequest")}},
        body_required=True,
        tag="release",
    ),
    ("POST", "/jobs"): Operation(
        "Start an asynchronous job, or poll one",
        "admin or user",
        {
            200: Answer(
                "The job: started, in progress, or ended (how it ended is in the answer)",
                {JSON: {"schema": ref("JobAnswer")}},
            ),
        },
        errors=(400, 404, 410, 413),
        body={JSON: {"schema": ref("JobRequest")}},
        body_required=True,
        tag="jobs",
    ),
    ("GET", "/jobs/{key}"): Operation(
        "Poll a job",
        "admin or user",
        json_answer("The job", ref("JobAnswer")),
        errors=(404, 410),
        path={"key": "The job's key"},
        tag="jobs",
    ),
    ("GET", "/jobs/{key}/files/{name}"): Operation(
        "A job's result file",
        "admin or user",
        {200: Answer("The file, as an attachment", {"*/*": {"schema": {}}})},
        errors=(404, 410),
        path={"key": "The job's key", "name": "The file's name, from the job's urls"},
        tag="jobs",
    ),
    ("POST", "/agent/printers"): Operation(
        "Register the agent's printers (replacing the ones it registered before)",
        "agent",
        json_answer(
            "The names registered",
            _object({"printers": {"type": "array", "items": {"type": "string"}}}),
        ),
        errors=(400, 413),
        body={
            JSON: {
                "schema": _object(
                    {
                        "printers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                                "required": ["name"],
                            },
                        }
                    }
                )
            }
        },
        body_required=True,
        tag="agents",
    ),
    ("GET", "/agent/jobs/next"): Operation(
        "Claim the next jobs (up to `max`), waiting up to `wait` seconds (capped by "
        "agents.poll-secs); a PDF of at most `inline` bytes comes with its job",
        "agent",
        json_answer(
            "The claimed jobs, oldest first (`job`: the first, or null when none came in time)",
            _object(
                {
                    "job": {"anyOf": [ref("AgentJob"), {"type": "null"}]},
                    "jobs": {"type": "array", "items": ref("AgentJob")},
                }
            ),
        ),
        errors=(400,),
        query={
            "wait": {"type": "integer", "minimum": 0, "maximum": 999_999_999},
            "max": {"type": "integer", "minimum": 1, "maximum": 16},
            "inline": {"type": "integer", "minimum": 0, "maximum": 1_048_576},
        },
        tag="agents",
    ),
    ("POST", "/agent/jobs/states"): Operation(
        "Report how several jobs are doing, each as if sent alone to /agent/jobs/{job}/state",
        "agent",
        json_answer(
            "Each report's outcome, in the order sent",
            _object(
                {
                    "results": {
                        "type": "array",
                        "items": _object(
                            {
                                "job": {"type": "integer"},
                                "state": {"type": "string"},
                                "status": {"type": "integer"},
                                "error": {"type": "string"},
                            },
                            required=("job",),
                        ),
                    }
                }
            ),
        ),
        errors=(400, 413),
        body={
            JSON: {"schema": _object({"reports": {"type": "array", "items": {"type": "object"}}})}
        },
        body_required=True,
        tag="agents",
    ),
    ("GET", "/agent/jobs/{job}/pdf"): Operation(
        "The PDF of a job the agent holds",
        "agent",
        _pdf("The PDF"),
        errors=(400, 404, 409),
        query={"claim": {"type": "string", "minLength": 1}},
        required_query=("claim",),
        path=AGENT_JOB,
        tag="agents",
    ),
    ("POST", "/agent/jobs/{job}/renew"): Operation(
        "Extend the lease on a job while CUPS prints it",
        "agent",
        json_answer("The new end of the lease", _object({"lease_until": {"type": "string"}})),
        errors=(400, 404, 409),
        body=CLAIM_BODY,
        body_required=True,
        path=AGENT_JOB,
        tag="agents",
    ),
    ("POST", "/agent/jobs/{job}/state"): Operation(
        "Report how a job is doing",
        "agent",
        json_answer(
            "The job's state as recorded",
            _object({"job": {"type": "integer"}, "state": {"type": "string"}}),
        ),
        errors=(400, 404, 409),
        body={
            JSON: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "claim": {"type": "string"},
                        "state": {
                            "type": "string",
                            "enum": [
                                "processing",
                                "completed",
                                "failed",
                                "aborted",
                                "canceled",
                                "released",
                            ],
                        },
                        "cups_job_id": {"type": "integer", "minimum": 0},
                        "impressions": {"type": "integer", "minimum": 0},
                        "message": {"type": "string"},
                    },
                    "required": ["claim", "state"],
                }
            }
        },
        body_required=True,
        path=AGENT_JOB,
        tag="agents",
    ),
    ("GET", "/openapi.json"): Operation(
        "This description",
        "public",
        json_answer("The OpenAPI 3.1 description of /restful/v1", {"type": "object"}),
        tag="system",
    ),
    ("GET", "/docs"): Operation(
        "This description as a page to read",
        "public",
        {200: Answer("An HTML page", {"text/html": {"schema": {"type": "string"}}})},
        tag="system",
    ),
}


# --- generating --------------------------------------------------------------------------------


class Undescribed(Exception):
    """A route without a declaration, or a declaration without a route."""


def openapi_path(route: Route) -> str:
    """The route's path in OpenAPI's form: ``/agent/jobs/{job:int}/pdf`` -> ``{job}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)


def route_operations(routes: Sequence[Route]) -> list[tuple[str, Route]]:
    """(method, route) for every operation the routes serve, in declaration order."""
    return [
        (method, route)
        for route in routes
        for method in sorted(route.methods or ())
        if method not in IGNORED_METHODS
    ]


def _path_parameters(route: Route, described: dict[str, str]) -> list[dict[str, Any]]:
    parameters = []
    for name, convertor in route.param_convertors.items():
        schema: dict[str, Any] = {"type": "string", "pattern": "^[^/]+$", "minLength": 1}
        if isinstance(convertor, IntegerConvertor):
            schema = {"type": "integer", "minimum": 0}
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": described.get(name, ""),
            }
        )
    return parameters


def _responses(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in operation.ok.items():
        body: dict[str, Any] = {"description": answer.description}
        if answer.content:
            body["content"] = answer.content
        if answer.headers:
            body["headers"] = answer.headers
        responses[str(status)] = body
    for status in sorted({*ACCESS[operation.access][1], *operation.errors}):
        content = {JSON: {"schema": ref("Failure")}}
        if status == 403 and operation.access == "admin or user":  # a JWT body that fails
            content = {JSON: {"schema": {"anyOf": [ref("Failure"), ref("JobTokenRefused")]}}}
        responses[str(status)] = {"description": ERRORS[status], "content": content}
    return responses


def _operation(method: str, route: Route, operation: Operation) -> dict[str, Any]:
    security, _ = ACCESS[operation.access]
    parameters = _path_parameters(route, operation.path)
    for name, schema in operation.query.items():
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in operation.required_query,
                "schema": schema,
            }
        )
    if operation.idempotent_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key gets the first answer again "
                "(Idempotent-Replayed: true) and changes nothing",
                "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
            }
        )
    described: dict[str, Any] = {
        "operationId": f"{method.lower()}{openapi_path(route)}",
        "summary": operation.summary,
        "tags": [operation.tag] if operation.tag else [],
        "security": security,
        "parameters": parameters,
        "responses": _responses(operation),
    }
    doc = (route.endpoint.__doc__ or "").strip()
    if doc:
        described["description"] = doc
    if operation.body is not None:
        described["requestBody"] = {
            "required": operation.body_required,
            "content": operation.body,
        }
    return described


def describe(
    routes: Sequence[Route], operations: dict[tuple[str, str], Operation] = OPERATIONS
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes`; Undescribed when routes and declarations differ."""
    served = route_operations(routes)
    missing = [f"{m} {r.path}" for m, r in served if (m, openapi_path(r)) not in operations]
    unrouted = sorted(set(operations) - {(m, openapi_path(r)) for m, r in served})
    if missing or unrouted:
        raise Undescribed(
            f"routes without a declaration: {missing}; declarations without a route: {unrouted}"
        )
    paths: dict[str, dict[str, Any]] = {}
    for method, route in served:
        item = paths.setdefault(openapi_path(route), {})
        item[method.lower()] = _operation(method, route, operations[(method, openapi_path(route))])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "printsrv REST API",
            "version": __version__,
            "description": "The REST services of printsrv, SavaPage's wire contract and "
            'printsrv\'s own. Answers use `{"succes": true, "result": ...}` and refusals '
            '`{"succes": false, "error": "..."}`. docs/openapi.md has more.',
        },
        "servers": [{"url": "/restful/v1"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def served_description() -> bytes:
    """The description of the routes the REST app serves, as JSON bytes (built once)."""
    from printsrv.rest import rest_routes  # the routes import this module's views

    return json.dumps(describe(rest_routes()), indent=1).encode()


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json: the OpenAPI 3.1 description of /restful/v1."""
    return Response(served_description(), media_type=JSON)


async def docs_page(request: Request) -> Response:
    """GET /docs: the description as a page to read, rendered on the server."""
    return HTMLResponse(page_html(json.loads(served_description())))


# --- the page ----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _schema_text(schema: Any) -> str:
    return _e(json.dumps(schema, indent=1))


def _bodies(content: dict[str, Any]) -> str:
    """``media type: schema`` per media type, a schema by reference linked to its section."""
    shown = []
    for media, body in content.items():
        schema = body.get("schema", {})
        name = schema.get("$ref", "").rpartition("/")[2]
        text = f"<a href='#schema-{_e(name)}'>{_e(name)}</a>" if name else _e(json.dumps(schema))
        shown.append(f"<code>{_e(media)}</code>: {text}")
    return "<br>".join(shown)


def page_html(document: dict[str, Any]) -> str:
    """A plain HTML page of the description: no script, no styles from elsewhere."""
    info = document["info"]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(info['title'])} {_e(info['version'])}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}"
        "code,pre{background:#f4f4f4}pre{padding:.5em;overflow:auto}"
        "h3{border-top:1px solid #ccc;padding-top:.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}</style></head><body>",
        f"<h1>{_e(info['title'])} {_e(info['version'])}</h1>",
        f"<p>{_e(info['description'])}</p>",
        "<p>Base: <code>/restful/v1</code>. The machine-readable form: "
        "<a href='openapi.json'>openapi.json</a>.</p><h2>Operations</h2><ul>",
    ]
    for path, item in document["paths"].items():
        for method, op in item.items():
            anchor = op["operationId"]
            out.append(
                f"<li><a href='#{_e(anchor)}'><code>{method.upper()} {_e(path)}</code></a> "
                f"{_e(op['summary'])}</li>"
            )
    out.append("</ul>")
    for path, item in document["paths"].items():
        for method, op in item.items():
            out.append(
                f"<h3 id='{_e(op['operationId'])}'><code>{method.upper()} {_e(path)}</code></h3>"
            )
            out.append(f"<p>{_e(op['summary'])}</p>")
            if op.get("description"):
                out.append(f"<pre>{_e(op['description'])}</pre>")
            who = " or ".join(", ".join(req) for req in op["security"]) or "anyone"
            out.append(f"<p>Who: {_e(who)}</p>")
            if op["parameters"]:
                out.append("<table><tr><th>Parameter</th><th>In</th><th>Schema</th></tr>")
                for p in op["parameters"]:
                    name = p["name"] + (" (required)" if p["required"] else "")
                    out.append(
                        f"<tr><td><code>{_e(name)}</code></td><td>{_e(p['in'])}</td>"
                        f"<td><code>{_e(json.dumps(p['schema']))}</code></td></tr>"
                    )
                out.append("</table>")
            if "requestBody" in op:
                for media, body in op["requestBody"]["content"].items():
                    out.append(
                        f"<p>Body ({_e(media)}):</p><pre>{_schema_text(body['schema'])}</pre>"
                    )
            out.append("<table><tr><th>Status</th><th>Meaning</th><th>Body</th></tr>")
            for status, answer in op["responses"].items():
                out.append(
                    f"<tr><td>{_e(status)}</td><td>{_e(answer['description'])}</td>"
                    f"<td>{_bodies(answer.get('content', {}))}</td></tr>"
                )
            out.append("</table>")
    out.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        out.append(f"<h3 id='schema-{_e(name)}'>{_e(name)}</h3><pre>{_schema_text(schema)}</pre>")
    out.append("<h2>Security schemes</h2><ul>")
    for name, scheme in document["components"]["securitySchemes"].items():
        out.append(f"<li><code>{_e(name)}</code>: {_e(scheme.get('description', scheme))}</li>")
    out.append("</ul></body></html>")
    return "\n".join(out)
