"""`printsrv backup create` on a running installation, and `restore` into an empty one."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from support import TEST_SECRET, LiveServer, set_config

from financial import accounts, checks, ledger
from financial.schema import Account, AccountTrx
from printsrv.cli import main
from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.platform.environment import Environment

ADMIN = accounts.Actor("admin", "admin")


def run(env: Environment, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        list(args),
        env={
            "PRINTSRV_HOME": str(env.home),
            "PRINTSRV_DATABASE_URL": env.database_url,
            "PRINTSRV_SECRET_KEY": env.secret_key or "",
        },
    )
    return result.exit_code, result.output


def populate(installation: Installation) -> None:
    set_config(
        installation,
        {"api.restful.auth.username": "admin", "api.restful.auth.password": "restored-pw1"},
    )
    with installation.db.transaction() as session:
        for name in ("alice", "bob"):
            users.add_user(session, name, password=f"{name}-password")
            account = accounts.get_or_create_user_account(session, name)
            ledger.adjust_balance(
                session, account=account, amount=Decimal("10.50"), comment="top-up", actor=ADMIN
            )
        users.add_group(session, "staff")
        users.add_member(session, "staff", "alice")
    store = installation.env.home / "documents" / "ab"
    store.mkdir(parents=True)
    (store / ("ab" + "0" * 62)).write_bytes(b"%PDF-1.4 stored document")


def snapshot_of(installation: Installation) -> dict[str, object]:
    with installation.db.read() as session:
        return {
            "users": [(u.user_name, u.password_hash) for u in users.list_users(session)],
            "members": users.list_members(session, "staff"),
            "balances": sorted((a.name, a.balance) for a in session.scalars(select(Account))),
            "ledger": sorted(
                (t.account_id, t.amount, t.balance_after, t.comment)
                for t in session.scalars(select(AccountTrx))
            ),
            "problems": checks.verify(session),
        }


def restore_target(tmp_path: Path, source: Installation) -> tuple[Environment, object]:
    """An empty home and an empty database of the source's kind; and how to drop it."""
    home = tmp_path / "restored-home"
    if source.db.backend == "sqlite":
        return Environment(
            home=home,
            database_url=f"sqlite:///{tmp_path / 'restored.db'}",
            secret_key=source.env.secret_key,
        ), lambda: None
    url = make_url(source.env.database_url)
    name = f"restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(query={}), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    target = url.set(database=name).render_as_string(hide_password=False)
    return Environment(home=home, database_url=target, secret_key=source.env.secret_key), drop


def test_backup_of_a_running_server_restores_everything(
    installation: Installation, tmp_path: Path
) -> None:
    populate(installation)
    before = snapshot_of(installation)
    server = LiveServer(installation).start()
    try:
        code, output = run(
            installation.env, "backup", "create", "--output", str(tmp_path / "b.tar")
        )
    finally:
        server.stop()
    assert code == 0, output
    assert "1 stored files" in output
    assert oct((tmp_path / "b.tar").stat().st_mode & 0o777) == "0o600"

    target, drop = restore_target(tmp_path, installation)
    try:
        code, output = run(target, "backup", "restore", str(tmp_path / "b.tar"))
        assert code == 0, output
        restored = open_installation(target)
        try:
            assert snapshot_of(restored) == before
            assert before["problems"] == []
            assert restored.config.snapshot()["api.restful.auth.password"].matches("restored-pw1")
            with restored.db.read() as session:
                assert users.check_password(session, "alice", "alice-password") is not None
            stored = target.home / "documents" / "ab" / ("ab" + "0" * 62)
            assert stored.read_bytes() == b"%PDF-1.4 stored document"
        finally:
            restored.db.dispose()
    finally:
        drop()  # type: ignore[operator]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_secret_generated_in_the_home_travels_with_the_backup(
    installation: Installation, tmp_path: Path
) -> None:
    env = Environment(home=tmp_path / "own-secret", database_url=installation.env.database_url)
    own = open_installation(env)  # no PRINTSRV_SECRET_KEY: secret.key is generated
    set_config(own, {"api.jsonrpc.secret-key": "jsonrpc-key-0123"})
    code, output = run(env, "backup", "create", "--output", str(tmp_path / "b.tar"))
    assert code == 0, output
    target = Environment(home=tmp_path / "new-home", database_url=f"sqlite:///{tmp_path}/n.db")
    code, output = run(target, "backup", "restore", str(tmp_path / "b.tar"))
    assert code == 0, output
    assert (target.home / "secret.key").read_bytes() == (env.home / "secret.key").read_bytes()
    restored = open_installation(target)
    assert restored.config.snapshot()["api.jsonrpc.secret-key"].matches("jsonrpc-key-0123")
    restored.db.dispose()
    own.db.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_restore_refuses_a_home_in_use_and_a_file_that_is_no_backup(
    installation: Installation, tmp_path: Path
) -> None:
    code, _ = run(installation.env, "backup", "create", "--output", str(tmp_path / "b.tar"))
    assert code == 0
    (installation.env.home / "in-use").write_text("an installation lives here")
    busy = Environment(
        home=installation.env.home,
        database_url=f"sqlite:///{tmp_path}/x.db",
        secret_key=TEST_SECRET,
    )
    code, output = run(busy, "backup", "restore", str(tmp_path / "b.tar"))
    assert code == 1 and "not empty" in output
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(2048))
    fresh = Environment(
        home=tmp_path / "fresh", database_url=f"sqlite:///{tmp_path}/f.db", secret_key=TEST_SECRET
    )
    code, output = run(fresh, "backup", "restore", str(junk))
    assert code == 1 and "not a printsrv backup" in output
    assert "Traceback" not in output
