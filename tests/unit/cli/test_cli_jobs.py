"""`printsrv job list|show|cancel|wait` against a real database, a runner doing the work."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from click.testing import CliRunner

import financial
from printsrv.accounts import service as accounting
from printsrv.cli import main
from printsrv.jobs import service
from printsrv.jobs.runner import JobRunner
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment

ADMIN = service.Owner.admin("admin")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def queue_report(installation: Installation) -> str:
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        account = financial.get_account(session, "USER", "rijk")
        for n in range(20):
            financial.adjust_balance(
                session,
                account=account,
                amount="1",
                comment=f"row {n}",
                actor=accounting.admin_actor("admin"),
            )
        return service.create_job(
            session,
            job_type="report.accounttrx",
            argument={"select": {"account_name": "rijk"}},
            owner=ADMIN,
        ).key


def test_list_show_wait_and_save(
    installation: Installation, process_env: Environment, tmp_path: Path
) -> None:
    key = queue_report(installation)
    code, output = run("job", "list")
    assert code == 0, output
    assert key in output and "queued" in output and "report.accounttrx" in output

    def work() -> None:
        async def once() -> None:
            runner = JobRunner(installation)
            await runner.step()
            await runner.drain()

        asyncio.run(once())

    worker = threading.Thread(target=work)
    worker.start()
    code, output = run("job", "wait", key, "--save", str(tmp_path / "out"))
    worker.join()
    assert code == 0, output
    assert f"job {key}: 100%" in output, "plain progress lines when not on a terminal"
    saved = tmp_path / "out" / "accounttrx.csv"
    assert saved.read_bytes().count(b"\r\n") == 21
    code, output = run("job", "show", key)
    assert code == 0, output
    assert "state:     done" in output and "accounttrx.csv" in output


def test_cancel_and_unknown_keys(installation: Installation, process_env: Environment) -> None:
    key = queue_report(installation)
    code, output = run("job", "cancel", key)
    assert (code, output.strip()) == (0, f"job {key} cancelled")
    code, output = run("job", "cancel", key)
    assert "had ended already" in output
    code, output = run("job", "wait", key)
    assert code == 1 and "canceled" in output and "error -1" in output
    code, output = run("job", "show", "no-such-key")
    assert code == 1 and "No job 'no-such-key'" in output
