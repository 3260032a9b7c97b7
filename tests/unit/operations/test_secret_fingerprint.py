"""The database knows its installation secret by a fingerprint: a machine with another
secret refuses to start, instead of answering 401 to every credential (issue 21)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import TEST_SECRET

from printsrv.cli import main
from printsrv.operations.installation import (
    Installation,
    WrongSecret,
    check_secret,
    open_installation,
)
from printsrv.platform.environment import Environment
from printsrv.platform.models import SecretFingerprint

OTHER_SECRET = "another-machines-secret-0123456789abcdef"


def stored_fingerprint(installation: Installation) -> str | None:
    with installation.db.read() as session:
        row = session.get(SecretFingerprint, 1)
        return row.fingerprint if row else None


def other_machine(environment: Environment, tmp_path: Path, secret: str) -> Installation:
    """The same database, opened from another home with `secret`."""
    return open_installation(
        Environment(
            home=tmp_path / "other", database_url=environment.database_url, secret_key=secret
        )
    )


def test_the_first_start_records_a_fingerprint_that_is_not_the_secret(
    installation: Installation,
) -> None:
    assert stored_fingerprint(installation) is None
    assert check_secret(installation, adopt=True) is True
    fingerprint = stored_fingerprint(installation)
    assert fingerprint == installation.secret_fingerprint
    assert TEST_SECRET not in fingerprint and TEST_SECRET.encode().hex() not in fingerprint
    assert check_secret(installation, adopt=True) is False  # known already: nothing written


def test_a_machine_with_another_secret_is_refused_saying_why(
    installation: Installation, environment: Environment, tmp_path: Path
) -> None:
    check_secret(installation, adopt=True)
    other = other_machine(environment, tmp_path, OTHER_SECRET)
    try:
        for adopt in (True, False):  # serve, and any other command
            with pytest.raises(WrongSecret) as refused:
                check_secret(other, adopt=adopt)
            message = refused.value.message
            assert "PRINTSRV_SECRET_KEY" in message and "not the one the database" in message
            assert "other machines" in message and OTHER_SECRET not in message
        assert stored_fingerprint(installation) == installation.secret_fingerprint
        check_secret(installation, adopt=False)  # the right secret still passes
    finally:
        other.db.dispose()


def test_an_installation_without_a_fingerprint_adopts_the_one_it_starts_with(
    installation: Installation, environment: Environment, tmp_path: Path
) -> None:
    # Set up before fingerprints were kept: commands other than a start check nothing and
    # write nothing, so the wrong secret on one of them can never become the installation's.
    assert check_secret(installation, adopt=False) is False
    assert stored_fingerprint(installation) is None
    assert check_secret(installation, adopt=True) is True
    other = other_machine(environment, tmp_path, OTHER_SECRET)
    try:
        with pytest.raises(WrongSecret):
            check_secret(other, adopt=True)
    finally:
        other.db.dispose()


def test_machines_starting_together_with_different_secrets_agree_on_one(
    installation: Installation, environment: Environment, tmp_path: Path
) -> None:
    machines = [installation] + [
        open_installation(
            Environment(
                home=tmp_path / f"m{n}",
                database_url=environment.database_url,
                secret_key=f"machine-{n}-secret-0123456789abcdef-0123",
            )
        )
        for n in range(3)
    ]
    barrier = threading.Barrier(len(machines))
    outcomes: list[str] = []

    def start(machine: Installation) -> None:
        barrier.wait()
        try:
            outcomes.append("adopted" if check_secret(machine, adopt=True) else "matched")
        except WrongSecret:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(m,)) for m in machines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for machine in machines[1:]:
            machine.db.dispose()
    assert sorted(outcomes) == ["adopted", "refused", "refused", "refused"]
    assert stored_fingerprint(installation) in {m.secret_fingerprint for m in machines}


def test_commands_refuse_another_secret_and_start_with_the_right_one(
    process_env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    first = open_installation(process_env)
    check_secret(first, adopt=True)
    first.db.dispose()
    assert runner.invoke(main, ["config", "get", "web-login.ttp.enable"]).exit_code == 0

    monkeypatch.setenv("PRINTSRV_SECRET_KEY", OTHER_SECRET)
    result = runner.invoke(main, ["config", "set", "web-login.ttp.enable", "Y"])
    assert result.exit_code == 1, result.output
    assert "not the one the database" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("PRINTSRV_SECRET_KEY", TEST_SECRET)
    assert runner.invoke(main, ["config", "get", "web-login.ttp.enable"]).output.strip() == "N"
