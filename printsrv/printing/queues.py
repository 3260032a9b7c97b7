"""Print queues: where a document goes when it comes in.

The reserved queue ``webservice`` takes REST uploads by default and holds them in the user's
inbox until released to a printer. Named queues either hold as well (routing ``none``) or
route each document straight to a CUPS printer with their own IPP options (routing
``printer``). Per queue: enabled or not, and ``ip-addresses-allowed`` (a CIDR set; void allows
every address). Queues live in the database, so a change is in force on every worker at once.

Option precedence when printing: printer defaults < queue routing options < the request's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.errors import Conflict, InvalidInput, NotAllowed, NotFound
from printsrv.platform.security import format_cidr_set, parse_cidr_set
from printsrv.printing.models import PrintQueue
from printsrv.printing.options import validate_options
from printsrv.printing.printers import get_printer, info_from_row, validate_for_any_printer

__all__ = [
    "RESERVED_QUEUE",
    "UNCHANGED",
    "add_queue",
    "check_access",
    "delete_queue",
    "get_queue",
    "list_queues",
    "normalise_queue_name",
    "parse_ipp_options",
    "routing_options",
    "set_enabled",
    "set_queue",
]

RESERVED_QUEUE: Final = "webservice"
_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
MAX_OPTIONS: Final = 32


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
"""Passed to ``set_queue`` for a setting that stays as it is."""


def normalise_queue_name(name: str) -> str:
    """A queue name as stored: lower-case letters, digits, '.', '_' and '-' (1-100)."""
    value = (name or "").strip().lower().strip("/")
    if not _NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"Queue name {name[:100]!r} must be 1-100 lower-case letters, digits, '.', '_' or '-'"
        )
    return value


def parse_ipp_options(text: str | None) -> dict[str, str]:
    """Parse ``ipp_options`` JSON: an object of IPP attribute name -> string value.

    Raises InvalidInput when it is not JSON, not an object, or too big; values that are not
    strings are left for ``validate_options`` to refuse with the supported values.
    """
    if text is None or not text.strip():
        return {}

    def refuse_constant(name: str) -> object:
        raise InvalidInput(f"ipp_options: {name} is not a valid JSON value")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"ipp_options is not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise InvalidInput("ipp_options nests too deeply") from None
    if not isinstance(value, dict):
        raise InvalidInput(
            'ipp_options must be a JSON object such as {"copies": "2", "sides": "one-sided"}'
        )
    if len(value) > MAX_OPTIONS:
        raise InvalidInput(f"ipp_options has more than {MAX_OPTIONS} attributes")
    return value


def _reserved() -> PrintQueue:
    # The reserved queue exists before anyone configured it; its row appears on first change.
    return PrintQueue(
        name=RESERVED_QUEUE,
        reserved=True,
        enabled=True,
        ip_allowed="",
        printer_name=None,
        ipp_options="{}",
    )


def get_queue(session: Session, name: str) -> PrintQueue:
    """The queue of that name (``webservice`` always exists); NotFound otherwise."""
    stored = normalise_queue_name(name)
    queue = session.scalar(select(PrintQueue).where(PrintQueue.name == stored))
    if queue is None:
        if stored == RESERVED_QUEUE:
            return _reserved()
        raise NotFound(f"Queue '{stored}' does not exist")
    return queue


def _stored_queue(session: Session, name: str) -> PrintQueue:
    """The queue's row, created for ``webservice`` when it has none yet."""
    queue = get_queue(session, name)
    if queue.id is None:
        session.add(queue)
        session.flush()
    return queue


def list_queues(session: Session) -> list[PrintQueue]:
    """Every queue, ``webservice`` included, sorted by name."""
    queues = list(session.scalars(select(PrintQueue).order_by(PrintQueue.name)))
    if not any(q.name == RESERVED_QUEUE for q in queues):
        queues.append(_reserved())
        queues.sort(key=lambda q: q.name)
    return queues


def routing_options(queue: PrintQueue) -> dict[str, str]:
    """The queue's routing IPP options."""
    value: dict[str, str] = json.loads(queue.ipp_options or "{}")
    return value


def check_access(queue: PrintQueue, client_host: str) -> None:
    """Refuse (NotAllowed) a disabled queue, or a client outside its allowlist."""
    if not queue.enabled:
        raise NotAllowed(f"Queue '{queue.name}' is disabled")
    if queue.ip_allowed:
        allowed = parse_cidr_set(queue.ip_allowed)
        if client_host not in allowed:
            raise NotAllowed(f"Client address {client_host} may not print to queue '{queue.name}'")


def _checked_routing(
    session: Session, printer: str | None, options: Mapping[str, object]
) -> tuple[str | None, str]:
    """Validate a routing target and its options; return what is stored."""
    if printer is not None:
        info = info_from_row(get_printer(session, printer))
        checked = validate_options(options, info)
    else:
        checked = validate_for_any_printer(options)
    return printer, json.dumps(checked, sort_keys=True)


def _cidrs(text: str) -> str:
    try:
        return format_cidr_set(text)
    except ValueError as exc:
        raise InvalidInput(f"ip-addresses-allowed: {exc}") from None


def add_queue(
    session: Session,
    name: str,
    *,
    printer: str | None = None,
    ipp_options: Mapping[str, object] | None = None,
    ip_allowed: str = "",
) -> PrintQueue:
    """Create a queue; Conflict when it exists (``webservice`` always does)."""
    stored = normalise_queue_name(name)
    if stored == RESERVED_QUEUE:
        raise Conflict(f"Queue '{RESERVED_QUEUE}' is reserved; change it with `queue set`")
    if session.scalar(select(PrintQueue.id).where(PrintQueue.name == stored)) is not None:
        raise Conflict(f"Queue '{stored}' already exists")
    target, options = _checked_routing(session, printer, ipp_options or {})
    queue = PrintQueue(
        name=stored,
        reserved=False,
        enabled=True,
        ip_allowed=_cidrs(ip_allowed),
        printer_name=target,
        ipp_options=options,
    )
    session.add(queue)
    session.flush()
    return queue


def set_queue(
    session: Session,
    name: str,
    *,
    printer: str | _Unchanged | None = UNCHANGED,
    ipp_options: Mapping[str, object] | _Unchanged = UNCHANGED,
    ip_allowed: str | _Unchanged = UNCHANGED,
) -> PrintQueue:
    """Change a queue's routing (``printer=None`` holds documents), options or allowlist.

    ``webservice`` always holds: routing it to a printer is refused (Conflict).
    """
    queue = _stored_queue(session, name)
    target = queue.printer_name if isinstance(printer, _Unchanged) else printer
    if queue.name == RESERVED_QUEUE and target is not None:
        raise Conflict(
            f"Queue '{RESERVED_QUEUE}' holds documents in the user's inbox; it cannot route"
        )
    options = routing_options(queue) if isinstance(ipp_options, _Unchanged) else ipp_options
    queue.printer_name, queue.ipp_options = _checked_routing(session, target, options)
    if not isinstance(ip_allowed, _Unchanged):
        queue.ip_allowed = _cidrs(ip_allowed)
    session.flush()
    return queue


def set_enabled(session: Session, name: str, enabled: bool) -> PrintQueue:
    """Enable or disable a queue; a disabled queue refuses documents (403)."""
    queue = _stored_queue(session, name)
    queue.enabled = enabled
    session.flush()
    return queue


def delete_queue(session: Session, name: str) -> str:
    """Delete a named queue and return its stored name; uploads naming it get a 404 after.

    The document log keeps the queue's name on its entries (a string, not a reference), so
    the history stays. ``webservice`` cannot go: it is where uploads without a queue land
    (Conflict; disable it instead). NotFound for no such queue.
    """
    queue = get_queue(session, name)
    if queue.name == RESERVED_QUEUE:
        raise Conflict(
            f"Queue '{RESERVED_QUEUE}' is reserved and cannot be deleted; "
            "`printsrv queue disable webservice` closes it"
        )
    session.delete(queue)
    session.flush()
    return queue.name
