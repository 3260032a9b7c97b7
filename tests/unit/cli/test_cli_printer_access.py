"""`printsrv printer access | allow | deny | access-remove` (CliRunner)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from printsrv.cli import main
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment
from printsrv.printing.models import Printer


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def ok(*args: str) -> str:
    code, output = run(*args)
    assert code == 0, output
    return output


@pytest.fixture(autouse=True)
def _setup(process_env: Environment, installation: Installation) -> None:
    """Printer lab (as `printer sync` stores it), groups staff and students."""
    with installation.db.transaction() as session:
        session.add(Printer(name="lab"))
        users.add_group(session, "staff")
        users.add_group(session, "students")


def test_allow_deny_list_and_remove() -> None:
    assert ok("printer", "access", "lab") == "lab: no access lists, everyone may print\n"
    assert ok("printer", "allow", "lab", "staff") == "lab: group 'staff' added to the ALLOW list\n"
    ok("printer", "deny", "lab", "students")
    assert ok("printer", "access", "lab").splitlines() == [
        "GROUP     SCOPE",
        "staff     ALLOW",
        "students  DENY",
    ]
    moved = ok("printer", "deny", "lab", "staff")
    assert moved == "lab: group 'staff' moved from the ALLOW to the DENY list\n"
    ok("printer", "access-remove", "lab", "staff")
    assert ok("printer", "access", "lab").splitlines()[1:] == ["students  DENY"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("printer", "allow", "nope", "staff"), "Printer 'nope' is not known"),
        (("printer", "deny", "lab", "ghosts"), "Group 'ghosts' does not exist"),
        (("printer", "access", "nope"), "Printer 'nope' is not known"),
        (("printer", "access-remove", "lab", "staff"), "'staff' is not on the access lists"),
    ],
)
def test_refusals_exit_1_with_one_line(args: tuple[str, ...], message: str) -> None:
    code, output = run(*args)
    assert code == 1, output
    assert message in output
