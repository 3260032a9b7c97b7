"""The units of work of a release station page and of the terminal API.

Every entry first checks the caller: a station address in
``release.station.ip-addresses-allowed`` (void: there are no stations), TLS off loopback
(a card number and a PIN are credentials), and maintenance. Only then does it read the
request's form or body (the adapters hand over a reader, not the bytes), so a client that is
no station is refused before it can make the server read anything. Then the printer (404
for an unknown one, before anyone is identified, so a typo costs no failed attempt), then
the person (``identify``), then their held documents (``held``).

The page keeps the person in a server-side session (``station_sessions``) until they
release, say they are done, or leave it ``release.station.idle-secs`` without input
(identifying starts that time, "More time" starts it again). The terminal API names the
person in each request.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from printsrv.accounts.reports import strict_json
from printsrv.errors import Conflict, InvalidInput, NotAllowed, PrintsrvError
from printsrv.operations.installation import Installation
from printsrv.operations.status import keep_users_out_in_maintenance
from printsrv.people.models import User
from printsrv.people.sessions import csrf_matches
from printsrv.platform.models import utcnow
from printsrv.platform.properties import Snapshot
from printsrv.platform.security import Client, address_in, require_tls
from printsrv.platform.threads import in_thread
from printsrv.printing.access import check_may_print
from printsrv.printing.context import PrintContext
from printsrv.printing.printers import get_printer
from printsrv.release import station_sessions
from printsrv.release.held import HeldDocument, Released, held_documents, release_documents
from printsrv.release.identify import Credentials, identify

__all__ = [
    "CSRF_REFUSED",
    "BodyReader",
    "FormReader",
    "Person",
    "StationPage",
    "TerminalAnswer",
    "TerminalRequest",
    "identify_at_station",
    "leave_station",
    "more_time_at_station",
    "release_at_station",
    "station_page",
    "terminal_release",
]

CSRF_REFUSED: Final = "This form has expired. Please start again."
MAX_DOCUMENTS: Final = 100
MAX_DOCUMENT_ID: Final = 2**31 - 1  # document.id is an INTEGER: past it, no id (a 500 once)

# How a service reads the request's form fields or body, once it knows the caller is a
# station (the adapter's capped reader: PayloadTooLarge past its limit).
FormReader = Callable[[], Awaitable[dict[str, str]]]
BodyReader = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class _Settings:
    idle: timedelta
    hold_hours: int


def _check_station(snapshot: Snapshot, client: Client, what: str) -> _Settings:
    """The station gate: allowlist (403), TLS off loopback (403), maintenance (503)."""
    if not address_in(client.host, snapshot.cidr_set("release.station.ip-addresses-allowed")):
        raise NotAllowed(
            f"Client address {client.host} is not a release station "
            "(release.station.ip-addresses-allowed)"
        )
    require_tls(client, what)
    keep_users_out_in_maintenance(snapshot)
    return _Settings(
        idle=timedelta(seconds=snapshot["release.station.idle-secs"]),
        hold_hours=snapshot["release.hold-hours"],
    )


def _check_printer(installation: Installation, name: str) -> str:
    """NotFound for a printer printsrv does not know, Conflict for one CUPS no longer has."""
    with installation.db.read() as session:
        row = get_printer(session, name)
        if not row.present:
            raise Conflict(f"Printer '{name}' is no longer on the CUPS server")
        return row.name


def _identify(
    installation: Installation, credentials: Credentials, *, printer: str, station: str
) -> User:
    """The person, checked against the printer's group lists; a failure is committed
    before it is raised, so it counts even though the request fails."""
    now = utcnow()
    with installation.db.transaction() as session:
        outcome = identify(
            session, credentials, station=station, hasher=installation.hasher, now=now
        )
        if isinstance(outcome, User):
            check_may_print(session, outcome, get_printer(session, printer))
            session.expunge(outcome)  # read later by id and name only
    if isinstance(outcome, PrintsrvError):
        raise outcome
    return outcome


# --- the station page --------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Who is at the station, and what they can release here."""

    user_name: str
    full_name: str
    documents: list[HeldDocument]
    csrf_token: str


@dataclass(frozen=True)
class StationPage:
    """What the station shows: the printer, and the person once identified (else None),
    with the whole seconds left before the station forgets them unless they act (0 when
    nobody is identified)."""

    printer: str
    idle_secs: int
    person: Person | None
    seconds_left: int = 0


def _page(
    installation: Installation, printer: str, station: str, session_id: str | None, s: _Settings
) -> StationPage:
    now = utcnow()
    with installation.db.transaction() as session:
        present = station_sessions.find_present(
            session, session_id, printer=printer, station=station, now=now
        )
        if present is None:
            return StationPage(printer, int(s.idle.total_seconds()), None)
        user = session.get_one(User, present.user_id)
        documents = held_documents(
            session, user, printer_name=printer, hold_hours=s.hold_hours, now=now
        )
        person = Person(user.user_name, user.full_name, documents, present.csrf_token)
    # Rounded up: a page that goes back to the form after this long finds the person gone.
    left = math.ceil((present.expires_at - now).total_seconds())
    return StationPage(printer, int(s.idle.total_seconds()), person, max(left, 1))


async def station_page(
    installation: Installation, *, printer: str, client: Client, session_id: str | None
) -> StationPage:
    """GET /release/{printer}: the identification form, or the identified person's held
    documents priced for this printer and how long the station keeps them. Showing the page
    is not input: it does not extend the person's time, so a page left alone (reloading
    itself to warn them) returns to the form."""
    settings = _check_station(installation.config.snapshot(), client, "A release station")
    name = await in_thread(_check_printer, installation, printer)
    return await in_thread(_page, installation, name, client.host, session_id, settings)


async def identify_at_station(
    installation: Installation,
    *,
    printer: str,
    client: Client,
    read_form: FormReader,
    csrf_cookie: str | None,
) -> str:
    """POST /release/{printer}/identify: a card, or a user name and PIN -> a new station
    session's id. The form's CSRF token must match the cookie's (double submit).

    Raises NotAllowed (not a station, no TLS, CSRF), InvalidInput, NotIdentified (401),
    StationThrottled (429), PrintingDenied (403), NotFound (printer), PayloadTooLarge.
    """
    settings = _check_station(installation.config.snapshot(), client, "A release station")
    form = await read_form()
    if not csrf_matches(csrf_cookie, form.get("csrf_token")):
        raise NotAllowed(CSRF_REFUSED)
    credentials = Credentials.parse(form.get("card"), form.get("user"), form.get("pin"))
    name = await in_thread(_check_printer, installation, printer)
    user = await in_thread(_identify, installation, credentials, printer=name, station=client.host)

    def start() -> str:
        now = utcnow()
        with installation.db.transaction() as session:
            station_sessions.purge_expired(session, now)
            return station_sessions.start(
                session, user=user, printer=name, station=client.host, idle=settings.idle, now=now
            )

    return await in_thread(start)


def _document_ids(value: str) -> list[int] | None:
    """ "all" -> None; one document number -> [it]; InvalidInput otherwise."""
    value = value.strip()
    if value == "all":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # isdigit() takes "²"
        raise InvalidInput(f"Document {value[:40]!r} is not a document number or 'all'")
    return [int(value)]


async def release_at_station(
    installation: Installation,
    *,
    printer: str,
    client: Client,
    session_id: str | None,
    read_form: FormReader,
) -> list[Released] | None:
    """POST /release/{printer}/print: release one held document (``document=ID``) or all
    (``document=all``) to this printer, then forget the person.

    None when nobody is identified at this station any more (walked away, or released on
    a second click); NotAllowed when the form lacks the session's CSRF token.
    """
    settings = _check_station(installation.config.snapshot(), client, "A release station")
    form = await read_form()
    asked = _document_ids(form.get("document", ""))
    name = await in_thread(_check_printer, installation, printer)

    def forget() -> tuple[User, list[int]] | None:
        now = utcnow()
        with installation.db.transaction() as session:
            present = station_sessions.find_present(
                session, session_id, printer=name, station=client.host, now=now
            )
            if present is None:
                return None
            if not csrf_matches(present.csrf_token, form.get("csrf_token")):
                raise NotAllowed(CSRF_REFUSED)
            # Forgotten first: a second click finds no one, and releases nothing twice.
            if not station_sessions.forget(session, present):
                return None
            user = session.get_one(User, present.user_id)
            ids = asked
            if ids is None:
                held = held_documents(
                    session, user, printer_name=name, hold_hours=settings.hold_hours, now=now
                )
                ids = [d.document_id for d in reversed(held)]  # oldest first
            session.expunge(user)
            return user, ids

    found = await in_thread(forget)
    if found is None:
        return None
    user, ids = found
    return await release_documents(
        PrintContext.of(installation),
        user=user,
        printer_name=name,
        document_ids=ids,
        station=client.host,
    )


async def leave_station(
    installation: Installation,
    *,
    printer: str,
    client: Client,
    session_id: str | None,
    read_form: FormReader,
) -> None:
    """POST /release/{printer}/leave: forget the person now ("Done" without releasing)."""
    _check_station(installation.config.snapshot(), client, "A release station")
    form = await read_form()

    def forget() -> None:
        with installation.db.transaction() as session:
            present = station_sessions.find_present(
                session, session_id, printer=printer, station=client.host, now=utcnow()
            )
            if present is None:
                return
            if not csrf_matches(present.csrf_token, form.get("csrf_token")):
                raise NotAllowed(CSRF_REFUSED)
            station_sessions.forget(session, present)

    await in_thread(forget)


async def more_time_at_station(
    installation: Installation,
    *,
    printer: str,
    client: Client,
    session_id: str | None,
    read_form: FormReader,
) -> bool:
    """POST /release/{printer}/more: "More time": the person is still there, so the station
    keeps them ``release.station.idle-secs`` from now. The new deadline is stored in the
    session's row, so every machine behind the load balancer keeps to it.

    False when nobody is identified here any more (too late, or released on another tap):
    the time of a forgotten person is not started again. NotAllowed for a form without the
    session's CSRF token.
    """
    settings = _check_station(installation.config.snapshot(), client, "A release station")
    form = await read_form()
    name = await in_thread(_check_printer, installation, printer)  # as the session names it

    def extend() -> bool:
        now = utcnow()
        with installation.db.transaction() as session:
            present = station_sessions.find_present(
                session, session_id, printer=name, station=client.host, now=now
            )
            if present is None:
                return False
            if not csrf_matches(present.csrf_token, form.get("csrf_token")):
                raise NotAllowed(CSRF_REFUSED)
            return station_sessions.extend(session, present, idle=settings.idle, now=now)

    return await in_thread(extend)


# --- the terminal API --------------------------------------------------------------------------

_FIELDS: Final = frozenset({"printer", "card", "user", "pin", "documents"})


@dataclass(frozen=True)
class TerminalRequest:
    """``{"printer": P, "card": C}`` or ``{"printer": P, "user": U, "pin": N}``, and
    optionally ``"documents": [ids] | "all"`` to release them (absent: list only)."""

    printer: str
    credentials: Credentials
    documents: list[int] | None
    release_all: bool

    @classmethod
    def parse(cls, body: Any) -> TerminalRequest:
        """Check the request's shape; InvalidInput names the field that is wrong."""
        if not isinstance(body, dict):
            raise InvalidInput('The body must be a JSON object such as {"printer": P, "card": C}')
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise InvalidInput(
                f"Field {unknown[0]!r} is not known (expected: {', '.join(sorted(_FIELDS))})"
            )
        printer = body.get("printer")
        if not isinstance(printer, str) or not printer.strip():
            raise InvalidInput("printer is missing: name the printer this terminal is at")
        credentials = Credentials.parse(body.get("card"), body.get("user"), body.get("pin"))
        documents = body.get("documents")
        if documents is None:
            return cls(printer.strip()[:255], credentials, None, False)
        if documents == "all":
            return cls(printer.strip()[:255], credentials, None, True)
        if (
            not isinstance(documents, list)
            or not documents
            or len(documents) > MAX_DOCUMENTS
            or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_DOCUMENT_ID
                for d in documents
            )
        ):
            raise InvalidInput(
                f'documents must be "all" or a list of 1 to {MAX_DOCUMENTS} document ids'
            )
        return cls(printer.strip()[:255], credentials, list(documents), False)


@dataclass(frozen=True)
class TerminalAnswer:
    """Who was identified, what was released (None: nothing asked), what is still held."""

    user_name: str
    printer: str
    released: list[Released] | None
    held: list[HeldDocument]


async def terminal_release(
    installation: Installation, *, client: Client, read_body: BodyReader
) -> TerminalAnswer:
    """POST /restful/v1/release: identify the person the JSON body names, release the
    documents it names (if any) to its printer, and list what they still have held there.

    Raises NotAllowed (403: not a station, or no TLS off loopback), UnderMaintenance (503),
    PayloadTooLarge (413), InvalidInput (400), NotFound (404: printer), NotIdentified (401),
    StationThrottled (429), PrintingDenied (403).
    """
    settings = _check_station(installation.config.snapshot(), client, "The release API")
    # The station is checked before the body is read: a stranger learns nothing of its
    # shape, and cannot make the server read up to the limit.
    body = await read_body()
    request = TerminalRequest.parse(strict_json(body, '{"printer": "P", "card": "C"}'))
    name = await in_thread(_check_printer, installation, request.printer)
    user = await in_thread(
        _identify, installation, request.credentials, printer=name, station=client.host
    )

    def held() -> list[HeldDocument]:
        with installation.db.read() as session:
            return held_documents(
                session,
                session.get_one(User, user.id),
                printer_name=name,
                hold_hours=settings.hold_hours,
                now=utcnow(),
            )

    released = None
    if request.documents is not None or request.release_all:
        ids = request.documents
        if ids is None:
            ids = [d.document_id for d in reversed(await in_thread(held))]
        released = await release_documents(
            PrintContext.of(installation),
            user=user,
            printer_name=name,
            document_ids=ids,
            station=client.host,
        )
    return TerminalAnswer(user.user_name, name, released, await in_thread(held))
