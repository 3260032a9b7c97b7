"""Which user groups may, or may not, print on a printer.

Each printer has an ALLOW list and a DENY list of groups (``printer_group_access``):

* a printer with no entries on either list is open to everyone;
* a user in any group on the DENY list is refused, whatever else holds;
* when the ALLOW list has entries, the user must be in at least one of those groups.

A group is on at most one of a printer's lists: granting it the other scope moves it.
``check_may_print`` is called wherever a job's printer is chosen (``printing.intake``),
before anything is converted, so a refusal costs nothing; ``confirm_may_print`` checks
again inside the transaction that charges, since the lists may change while a document
converts. That check reads the printer row ``FOR SHARE`` and every change of the lists locks
it ``FOR UPDATE`` (PostgreSQL; SQLite's writers take turns anyway), so a change and a charge
on one printer take turns: a print is charged under the lists as they are when it commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import and_, delete, select
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, NotAllowed, NotFound
from printsrv.people.models import User, UserGroup, UserGroupMember
from printsrv.people.users import get_group
from printsrv.printing.models import Printer, PrinterGroupAccess
from printsrv.printing.printers import get_printer

__all__ = [
    "SCOPES",
    "GroupAccess",
    "PrintingDenied",
    "check_may_print",
    "confirm_may_print",
    "describe_grant",
    "grant",
    "list_access",
    "parse_scope",
    "revoke",
    "revoke_all",
]

ALLOW: Final = "ALLOW"
DENY: Final = "DENY"
SCOPES: Final = (ALLOW, DENY)


class PrintingDenied(NotAllowed):
    """A user may not print on a printer: one of their groups is on its DENY list, or the
    printer has an ALLOW list and they are in none of its groups. Answered 403."""

    def __init__(self, user_name: str, printer: str, why: str) -> None:
        super().__init__(f"User '{user_name}' may not print on printer '{printer}': {why}")
        self.user_name = user_name
        self.printer = printer


@dataclass(frozen=True)
class GroupAccess:
    """One entry of a printer's lists.

    Attributes:
        group: the group name.
        scope: ``ALLOW`` or ``DENY``.
    """

    group: str
    scope: str


def parse_scope(scope: str) -> str:
    """``ALLOW`` or ``DENY`` (any case); InvalidInput naming the value otherwise."""
    upper = scope.strip().upper() if isinstance(scope, str) else ""
    if upper not in SCOPES:
        raise InvalidInput(f"Scope {scope!r} is not ALLOW or DENY", reason="scope")
    return upper


def grant(session: Session, printer: str, group: str, scope: str) -> str | None:
    """Put ``group`` on ``printer``'s ALLOW or DENY list, moving it off the other one.

    Returns the scope the group had before (None when it was on neither list); granting the
    scope it already has changes nothing. Raises InvalidInput (scope), NotFound (printer,
    group).
    """
    wanted = parse_scope(scope)
    # Locked first: two identical grants at once take turns, and the second finds the
    # first's entry ("already on the list") instead of colliding on its primary key.
    printer_row = _lock_for_change(session, printer)
    group_row = get_group(session, group)
    entry = session.get(PrinterGroupAccess, (printer_row.id, group_row.id))
    if entry is None:
        session.add(
            PrinterGroupAccess(printer_id=printer_row.id, group_id=group_row.id, scope=wanted)
        )
        session.flush()
        return None
    previous, entry.scope = entry.scope, wanted
    session.flush()
    return previous


def _lock_for_change(session: Session, printer: str) -> Printer:
    """The printer row, locked until the transaction ends: prints being charged on it finish
    first, and prints charged after this change see it (``confirm_may_print``)."""
    row = get_printer(session, printer)
    session.execute(select(Printer.id).where(Printer.id == row.id).with_for_update())
    return row


def describe_grant(group: str, scope: str, previous: str | None) -> str:
    """What ``grant`` did, in words: "group 'staff' moved from the DENY to the ALLOW list"."""
    if previous is None:
        return f"group '{group}' added to the {scope} list"
    if previous == scope:
        return f"group '{group}' is already on the {scope} list"
    return f"group '{group}' moved from the {previous} to the {scope} list"


def revoke(session: Session, printer: str, group: str, scope: str | None = None) -> None:
    """Take ``group`` off ``printer``'s lists (only off the ``scope`` list when given).

    Raises NotFound when the printer or group does not exist, or the group is not on the
    list named; nothing is changed then.
    """
    wanted = parse_scope(scope) if scope is not None else None
    printer_row = _lock_for_change(session, printer)
    group_row = get_group(session, group)
    entry = session.get(PrinterGroupAccess, (printer_row.id, group_row.id))
    if entry is None or (wanted is not None and entry.scope != wanted):
        lists = f"the {wanted} list" if wanted else "the access lists"
        raise NotFound(
            f"Group '{group_row.name}' is not on {lists} of printer '{printer_row.name}'"
        )
    session.delete(entry)
    session.flush()


def revoke_all(session: Session, printer: str, scope: str | None = None) -> int:
    """Empty ``printer``'s lists (only the ``scope`` list when given); the number removed.

    With both lists empty the printer is open to everyone again.
    """
    wanted = parse_scope(scope) if scope is not None else None
    printer_row = _lock_for_change(session, printer)
    query = delete(PrinterGroupAccess).where(PrinterGroupAccess.printer_id == printer_row.id)
    if wanted is not None:
        query = query.where(PrinterGroupAccess.scope == wanted)
    removed = session.execute(query.execution_options(synchronize_session="fetch")).rowcount
    session.flush()
    return removed


def list_access(session: Session, printer: str, scope: str | None = None) -> list[GroupAccess]:
    """The groups on ``printer``'s lists (only the ``scope`` list when given), sorted by
    group name; NotFound for no printer."""
    wanted = parse_scope(scope) if scope is not None else None
    printer_row = get_printer(session, printer)
    query = (
        select(UserGroup.name, PrinterGroupAccess.scope)
        .join(UserGroup, UserGroup.id == PrinterGroupAccess.group_id)
        .where(PrinterGroupAccess.printer_id == printer_row.id)
        .order_by(UserGroup.name)
    )
    if wanted is not None:
        query = query.where(PrinterGroupAccess.scope == wanted)
    return [GroupAccess(name, scope) for name, scope in session.execute(query)]


def check_may_print(session: Session, user: User, printer: Printer) -> None:
    """Raise PrintingDenied unless ``user`` may print on ``printer`` (rules: module docstring).

    Only ``user.id`` and ``user.user_name`` are read, so a detached user will do.
    """
    query = (
        select(PrinterGroupAccess.scope, UserGroup.name, UserGroupMember.user_id)
        .join(UserGroup, UserGroup.id == PrinterGroupAccess.group_id)
        .outerjoin(
            UserGroupMember,
            and_(
                UserGroupMember.group_id == PrinterGroupAccess.group_id,
                UserGroupMember.user_id == user.id,
            ),
        )
        .where(PrinterGroupAccess.printer_id == printer.id)
        .order_by(UserGroup.name)
    )
    entries = session.execute(query).all()
    denied = [name for scope, name, member in entries if scope == DENY and member is not None]
    if denied:
        raise PrintingDenied(user.user_name, printer.name, f"group '{denied[0]}' is denied there")
    allowed = [(name, member) for scope, name, member in entries if scope == ALLOW]
    if allowed and all(member is None for _, member in allowed):
        raise PrintingDenied(
            user.user_name, printer.name, "only members of the groups allowed there may print"
        )


def confirm_may_print(session: Session, user: User, printer: str) -> Printer:
    """``check_may_print`` in the transaction that charges a print on ``printer``; its row.

    The row is read ``FOR SHARE``: a change of the lists waits for this transaction, and
    this one waits for a change under way, so the print is charged (or refused,
    PrintingDenied) under the lists as they stand when it commits. Prints on one printer
    do not wait for each other. NotFound when the printer is gone.
    """
    row = get_printer(session, printer)
    session.execute(select(Printer.id).where(Printer.id == row.id).with_for_update(read=True))
    check_may_print(session, user, row)
    return row
