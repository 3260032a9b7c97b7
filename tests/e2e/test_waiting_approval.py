"""The list of prints waiting for approval, end to end: a hold rule holds a REST upload on a
live server, the REST admin route and the CLI list it, and an approval or denial taken from
the list prints (on the private cupsd) and charges once, or charges nothing. On SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_charges,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from support import LiveServer

from printsrv.cli import main
from printsrv.platform.environment import Environment
from printsrv.printing import queues, rules


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    """Queue ``lab`` routes to the capture printer at 0.10 a side; rule ``big-jobs`` holds
    anything over 3 pages."""
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer="capture")
    rules.add_rule(
        setup.installation.db, name="big-jobs", scope="all", condition="pages>3", action="hold",
        message="Big job: a teacher approves",
    )  # fmt: skip
    live = LiveServer(setup.installation).start()
    yield live
    live.stop()


def waiting(server: LiveServer, auth: tuple[str, str] = ADMIN, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/restful/v1/documents/waiting", auth=auth, params=params)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_the_admin_lists_a_held_upload_approves_it_and_the_list_is_empty(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    assert waiting(server).json() == []
    small = upload(server.url, setup.auth, "memo.pdf", pdf_bytes(1), queue="lab")
    assert small.json()["status"] == "printing", small.text  # the rule does not hold it
    held = upload(server.url, setup.auth, "thesis.pdf", pdf_bytes(4), queue="lab", ext_id="t-1")
    assert held.json()["status"] == "waiting", held.text
    charged_before = print_charges(setup)

    response = waiting(server)
    assert response.status_code == 200, response.text
    [entry] = response.json()
    assert entry["ref"] == str(held.json()["id"])
    assert (entry["user"], entry["title"], entry["pages"]) == (setup.user, "thesis.pdf", 4)
    assert (entry["printer"], entry["queue"], entry["cost"]) == ("capture", "lab", "0.400000")
    assert entry["rules"] == ["big-jobs"] and entry["ext_id"] == "t-1"
    assert entry["message"] == "Big job: a teacher approves"
    assert entry["waiting_since"][:2] == "20"

    # The list is the admin's: a user's credentials are refused; bad paging names the field.
    assert waiting(server, setup.auth).status_code == 401
    bad = waiting(server, limit="0")
    assert bad.status_code == 400 and "limit" in bad.json()["error"]

    # The reference from the list is the one /approve takes.
    approved = httpx.post(
        f"{server.url}/restful/v1/documents/{entry['ref']}/approve", auth=ADMIN, timeout=30
    )
    assert approved.status_code == 200, approved.text
    assert waiting(server).json() == []
    last = setup.jobs()[-1]
    assert last.document.source_id == held.json()["id"]  # the print of the held upload
    job = setup.wait_job(last.id)
    assert job.state == "completed", job.message
    env = setup.cups.read_env("capture", job.cups_job_id)  # printed on the private cupsd
    assert "thesis" in env["TITLE"], env
    assert print_charges(setup) == charged_before + 1
    assert setup.balance() == Decimal("10.00") - Decimal("0.10") - Decimal("0.40")


def test_the_cli_lists_the_waiting_prints_oldest_first_and_a_denied_one_leaves(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    process_env: Environment,
) -> None:
    setup = printing_setup
    code, output = cli("document", "waiting")
    assert code == 0 and "No print is waiting for approval" in output, output
    first = upload(server.url, setup.auth, "first.pdf", pdf_bytes(4), queue="lab").json()["id"]
    second = upload(server.url, setup.auth, "second.pdf", pdf_bytes(5), queue="lab").json()["id"]

    code, output = cli("document", "waiting")
    assert code == 0, output
    header, *lines = output.splitlines()
    assert header.split() == [
        "REF", "USER", "TITLE", "PAGES", "PRINTER", "QUEUE", "COST", "RULES", "SINCE", "(UTC)",
    ]  # fmt: skip
    assert [line.split()[:8] for line in lines] == [
        [str(first), setup.user, "first.pdf", "4", "capture", "lab", "0.400000", "big-jobs"],
        [str(second), setup.user, "second.pdf", "5", "capture", "lab", "0.500000", "big-jobs"],
    ]
    code, output = cli("document", "waiting", "--limit", "1", "--offset", "1")
    assert code == 0 and [line.split()[0] for line in output.splitlines()[1:]] == [str(second)]
    code, output = cli("document", "waiting", "--limit", "0")
    assert code != 0 and "limit 0 is not between 1 and 1000" in output, output

    code, output = cli("document", "deny", str(first), "--comment", "Not course work")
    assert code == 0, output
    code, output = cli("document", "waiting")
    assert [line.split()[0] for line in output.splitlines()[1:]] == [str(second)]
    assert print_charges(setup) == 0 and setup.jobs() == []
