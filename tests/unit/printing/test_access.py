"""printing.access: the ALLOW/DENY group lists of a printer and who may print there."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, NotFound
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing import access
from printsrv.printing.access import GroupAccess, PrintingDenied
from printsrv.printing.models import Printer, PrinterGroupAccess


@pytest.fixture
def session(installation: Installation) -> Iterator[Session]:
    """Printers lab and hall; users ann (staff), bob (students), cy (staff and banned), dee
    (no group); groups staff, students, banned. Each test has its own database."""
    with installation.db.transaction() as session:
        session.add_all([Printer(name="lab"), Printer(name="hall")])
        for name in ("ann", "bob", "cy", "dee"):
            users.add_user(session, name)
        for group in ("staff", "students", "banned"):
            users.add_group(session, group)
        for group, member in (("staff", "ann"), ("students", "bob"), ("staff", "cy")):
            users.add_member(session, group, member)
        users.add_member(session, "banned", "cy")
        session.flush()
        yield session


def may_print(session: Session, user_name: str, printer: str = "lab") -> bool:
    row = session.scalar(select(Printer).where(Printer.name == printer))
    assert row is not None
    try:
        access.check_may_print(session, users.get_user(session, user_name), row)
    except PrintingDenied:
        return False
    return True


def entries(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PrinterGroupAccess)) or 0


def test_a_printer_without_lists_is_open_to_everyone(session: Session) -> None:
    assert all(may_print(session, name) for name in ("ann", "bob", "cy", "dee"))
    assert access.list_access(session, "lab") == []


def test_a_deny_entry_refuses_only_the_groups_members(session: Session) -> None:
    access.grant(session, "lab", "students", "DENY")
    assert not may_print(session, "bob")
    assert may_print(session, "ann") and may_print(session, "dee")
    assert may_print(session, "bob", "hall"), "the lists are per printer"


def test_an_allow_list_admits_only_its_groups_members(session: Session) -> None:
    access.grant(session, "lab", "staff", "ALLOW")
    assert may_print(session, "ann")
    assert not may_print(session, "bob")
    assert not may_print(session, "dee"), "a user in no group is in no allowed group"


def test_deny_wins_over_allow(session: Session) -> None:
    access.grant(session, "lab", "staff", "ALLOW")
    access.grant(session, "lab", "banned", "DENY")
    assert may_print(session, "ann")
    assert not may_print(session, "cy"), "cy is in staff (allowed) and banned (denied)"


def test_the_refusal_names_the_user_the_printer_and_the_denied_group(session: Session) -> None:
    access.grant(session, "lab", "banned", "DENY")
    cy = users.get_user(session, "cy")
    lab = session.scalar(select(Printer).where(Printer.name == "lab"))
    assert lab is not None
    with pytest.raises(PrintingDenied, match="User 'cy' may not print on printer 'lab'") as info:
        access.check_may_print(session, cy, lab)
    assert "group 'banned' is denied there" in str(info.value)


def test_granting_the_other_scope_moves_the_group(session: Session) -> None:
    assert access.grant(session, "lab", "Staff", "ALLOW") is None
    assert access.grant(session, "lab", "staff", "ALLOW") == "ALLOW"  # unchanged
    assert access.grant(session, "lab", "staff", "deny") == "ALLOW"  # moved
    assert access.list_access(session, "lab") == [GroupAccess("staff", "DENY")]
    assert entries(session) == 1
    assert not may_print(session, "ann")


def test_describe_grant_says_what_happened() -> None:
    assert access.describe_grant("staff", "ALLOW", None) == "group 'staff' added to the ALLOW list"
    assert "already on the ALLOW list" in access.describe_grant("staff", "ALLOW", "ALLOW")
    assert "moved from the DENY to the ALLOW list" in access.describe_grant("s", "ALLOW", "DENY")


def test_list_is_sorted_and_can_be_narrowed_to_one_scope(session: Session) -> None:
    access.grant(session, "lab", "students", "ALLOW")
    access.grant(session, "lab", "banned", "DENY")
    access.grant(session, "lab", "staff", "ALLOW")
    assert access.list_access(session, "lab") == [
        GroupAccess("banned", "DENY"),
        GroupAccess("staff", "ALLOW"),
        GroupAccess("students", "ALLOW"),
    ]
    assert access.list_access(session, "lab", "DENY") == [GroupAccess("banned", "DENY")]


def test_revoke_removes_one_entry_and_refuses_what_is_not_there(session: Session) -> None:
    access.grant(session, "lab", "staff", "ALLOW")
    with pytest.raises(NotFound, match="'students' is not on the access lists of printer 'lab'"):
        access.revoke(session, "lab", "students")
    with pytest.raises(NotFound, match="'staff' is not on the DENY list"):
        access.revoke(session, "lab", "staff", "DENY")
    assert entries(session) == 1, "a refused revoke changes nothing"
    access.revoke(session, "lab", "staff", "ALLOW")
    assert access.list_access(session, "lab") == []
    assert may_print(session, "bob")


def test_revoke_all_empties_one_list_or_both(session: Session) -> None:
    access.grant(session, "lab", "staff", "ALLOW")
    access.grant(session, "lab", "students", "ALLOW")
    access.grant(session, "lab", "banned", "DENY")
    access.grant(session, "hall", "banned", "DENY")
    assert access.revoke_all(session, "lab", "ALLOW") == 2
    assert access.list_access(session, "lab") == [GroupAccess("banned", "DENY")]
    assert access.revoke_all(session, "lab") == 1
    assert access.list_access(session, "lab") == []
    assert access.list_access(session, "hall") == [GroupAccess("banned", "DENY")]
    assert access.revoke_all(session, "lab") == 0


def test_unknown_printer_group_and_scope_are_refused_by_name(session: Session) -> None:
    with pytest.raises(NotFound, match="Printer 'nope'"):
        access.grant(session, "nope", "staff", "ALLOW")
    with pytest.raises(NotFound, match="Group 'ghosts'"):
        access.grant(session, "lab", "ghosts", "ALLOW")
    with pytest.raises(InvalidInput, match="Scope 'MAYBE' is not ALLOW or DENY") as info:
        access.grant(session, "lab", "staff", "MAYBE")
    assert info.value.reason == "scope"
    with pytest.raises(NotFound, match="Printer 'nope'"):
        access.list_access(session, "nope")
    with pytest.raises(NotFound, match="Printer 'nope'"):
        access.revoke_all(session, "nope")
    assert entries(session) == 0


def test_deleting_a_group_or_a_printer_leaves_no_entries(session: Session) -> None:
    access.grant(session, "lab", "staff", "ALLOW")
    access.grant(session, "hall", "staff", "DENY")
    access.grant(session, "hall", "students", "ALLOW")
    users.delete_group(session, "staff")
    session.expire_all()
    assert access.list_access(session, "lab") == []
    assert access.list_access(session, "hall") == [GroupAccess("students", "ALLOW")]
    hall = session.scalar(select(Printer).where(Printer.name == "hall"))
    session.delete(hall)
    session.flush()
    assert entries(session) == 0


def test_a_list_change_waits_for_a_print_being_charged_and_the_next_print_obeys_it(
    installation: Installation,
) -> None:
    # A print is charged under the lists as they stand when it commits: a change of the
    # lists waits for a charge under way (the printer row's lock; SQLite: its write lock),
    # and the charges after it are refused.
    with installation.db.transaction() as session:
        session.add(Printer(name="lab"))
        users.add_user(session, "cy")
        users.add_group(session, "banned")
        users.add_member(session, "banned", "cy")
    charging, finish = threading.Event(), threading.Event()

    def charge() -> None:
        with installation.db.transaction() as session:
            access.confirm_may_print(session, users.get_user(session, "cy"), "lab")
            charging.set()
            finish.wait(10)

    def deny() -> None:
        with installation.db.transaction() as session:
            access.grant(session, "lab", "banned", "DENY")

    printing, changing = threading.Thread(target=charge), threading.Thread(target=deny)
    printing.start()
    assert charging.wait(10)
    changing.start()
    changing.join(0.5)
    assert changing.is_alive(), "the list changed under a print being charged"
    finish.set()
    printing.join(10)
    changing.join(10)
    assert not changing.is_alive()
    with installation.db.transaction() as session, pytest.raises(PrintingDenied):
        access.confirm_may_print(session, users.get_user(session, "cy"), "lab")
