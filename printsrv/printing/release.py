"""Releasing a held document from the user's page: the printer choices, and the form's unit of work.

The form asks for a printer, copies, sides and colour; everything else is the REST release's
business: ``release_from_form`` turns the form into the same call ``POST
/restful/v1/documents/<id>/print`` makes (``printing.intake.release``), so ownership, expiry,
printer access, options against the printer's capabilities, price and credit are checked in
one place, whichever door the request came through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.documents.models import Document
from printsrv.errors import Conflict, InvalidInput, NotAuthenticated
from printsrv.operations.installation import Installation
from printsrv.people.models import User
from printsrv.platform.threads import in_thread
from printsrv.printing import intake
from printsrv.printing.access import PrintingDenied, check_may_print
from printsrv.printing.context import PrintContext
from printsrv.printing.history import released_print
from printsrv.printing.printers import info_from_row, list_printers

__all__ = [
    "PrinterChoice",
    "ReleaseChoices",
    "ReleaseRequest",
    "release_choices",
    "release_from_form",
]

# What the form offers; "" leaves the option to the document and the printer's default.
SIDES: Final = ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
COLOUR_MODES: Final = ("monochrome", "color")
MAX_COPIES: Final = 99  # a form limit; the printer's copies-supported is checked by the service


@dataclass(frozen=True)
class PrinterChoice:
    """A printer the form offers: its CUPS name and what a person reads."""

    name: str
    label: str


@dataclass(frozen=True)
class ReleaseChoices:
    """What the release form offers: printers, and the sides and colour modes at least one
    of them supports (the service checks the chosen printer)."""

    printers: tuple[PrinterChoice, ...]
    sides: tuple[str, ...]
    colour_modes: tuple[str, ...]
    max_copies: int = MAX_COPIES


def release_choices(session: Session, user: User) -> ReleaseChoices:
    """The printers ``user`` can release a document to: on the CUPS server, accepting jobs,
    and open to the user by the printer's group access lists."""
    printers: list[PrinterChoice] = []
    sides: set[str] = set()
    colours: set[str] = set()
    for row in list_printers(session):
        if not row.present or not row.accepting:
            continue
        try:
            check_may_print(session, user, row)
        except PrintingDenied:
            continue  # the service would refuse it: do not offer it
        info = info_from_row(row)
        where = info.location or info.info
        printers.append(PrinterChoice(row.name, f"{row.name} ({where})" if where else row.name))
        sides.update(info.sides_supported)
        colours.update(info.print_color_mode_supported)
    return ReleaseChoices(
        tuple(printers),
        tuple(s for s in SIDES if s in sides),
        tuple(c for c in COLOUR_MODES if c in colours),
    )


@dataclass(frozen=True)
class ReleaseRequest:
    """The release form, checked for shape (the service checks the values against the printer).

    Attributes:
        document_id: the held document.
        printer: the CUPS printer chosen.
        ipp_options: the options chosen, as the REST release's ``ipp_options`` JSON.
    """

    document_id: int
    printer: str
    ipp_options: str

    @classmethod
    def parse(cls, form: dict[str, str]) -> ReleaseRequest:
        """Read the form's fields; InvalidInput names the field that is wrong."""
        document = form.get("document", "").strip()
        # isascii: str.isdigit() also takes "²", which int() refuses.
        if not (document.isascii() and document.isdigit()) or len(document) > 18:
            raise InvalidInput(f"Document {document[:40]!r} is not a document number")
        printer = form.get("printer", "").strip()
        if not printer:
            raise InvalidInput("Choose a printer")
        options: dict[str, str] = {}
        copies = form.get("copies", "").strip()
        if copies:
            if (
                not (copies.isascii() and copies.isdigit())
                or not 1 <= int(copies[:9]) <= MAX_COPIES
            ):
                raise InvalidInput(f"Copies {copies[:20]!r} is not a number from 1 to {MAX_COPIES}")
            options["copies"] = str(int(copies))
        for field, attribute, allowed in (
            ("sides", "sides", SIDES),
            ("colour", "print-color-mode", COLOUR_MODES),
        ):
            value = form.get(field, "").strip()
            if value:
                if value not in allowed:
                    raise InvalidInput(
                        f"{field.capitalize()} {value[:40]!r} is not one of: {', '.join(allowed)}"
                    )
                options[attribute] = value
        return cls(int(document), printer[:255], json.dumps(options, sort_keys=True))


def _user(installation: Installation, user_id: int, document_id: int) -> User:
    """The logged-in user, once it is clear the document is not already out of the inbox."""
    with installation.db.read() as session:
        user = session.get(User, user_id)
        if user is None or not user.enabled or user.deleted_at is not None:
            raise NotAuthenticated("Your session has ended. Please log in again.")
        # The page offers the button only for held documents; a reload or a second click
        # must not print (and charge) again. This early check answers before any option is
        # checked; intake.release(once=True) checks again inside the charging transaction,
        # where two racing clicks take turns. Only the user's own documents are looked at,
        # so another user's document stays indistinguishable from a missing one (NotFound).
        owned = session.scalar(
            select(Document.id).where(Document.id == document_id, Document.user_id == user_id)
        )
        if owned is not None and released_print(session, document_id) is not None:
            raise Conflict(f"Document {document_id} has already been released: see your prints")
        return user


async def release_from_form(
    installation: Installation, *, user_id: int, form: dict[str, str], client_host: str
) -> intake.Accepted:
    """Release a held document of the logged-in user as the form asks.

    Raises what ``intake.release`` raises (NotFound: not the user's document or an unknown
    printer; Conflict: expired or no longer stored; OptionRejected; CreditExceeded;
    NotAllowed), InvalidInput for a malformed form, and Conflict for a document already
    released (printing or printed). A CUPS failure is not raised: the
    print is failed and refunded, and the answer's ``status`` says ``failed``.
    """
    request = ReleaseRequest.parse(form)
    user = await in_thread(_user, installation, user_id, request.document_id)
    return await intake.release(
        PrintContext.of(installation),
        user=user,  # always the logged-in person: the form never names a user
        document_id=request.document_id,
        printer_name=request.printer,
        ipp_options=request.ipp_options,
        client_host=client_host,
        once=True,
    )
