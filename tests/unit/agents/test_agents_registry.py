"""The agents registry and `printsrv agent add|list|remove`, against a real database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from support import LiveServer

from printsrv.agents import registry
from printsrv.agents.models import Agent
from printsrv.cli import main
from printsrv.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from printsrv.operations.installation import Installation
from printsrv.platform.environment import Environment
from printsrv.platform.models import utcnow


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_add_prints_a_token_once_and_stores_only_its_keyed_hash(
    installation: Installation, process_env: Environment
) -> None:
    code, output = run("agent", "add", "site-a")
    assert code == 0, output
    token = output.strip().splitlines()[-1]
    assert len(token) >= 40
    with installation.db.read() as session:
        row = session.scalar(select(Agent).where(Agent.name == "site-a"))
        assert row is not None
        assert token not in row.token_digest
        assert row.token_digest == installation.hasher.digest(token)
    code, output = run("agent", "add", "site-a")
    assert code != 0 and "exists" in output


def test_authenticate_takes_the_right_token_only(installation: Installation) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        token = registry.add_agent(session, "site-a", hasher=hasher)
        other = registry.add_agent(session, "site-b", hasher=hasher)
    with installation.db.transaction() as session:
        agent = registry.authenticate_agent(
            session, "site-a", token, hasher=hasher, address="192.0.2.1"
        )
        assert agent.name == "site-a" and agent.last_contact_at is not None
    for name, candidate in (
        ("site-a", other),
        ("site-a", token + "x"),
        ("nobody", token),
        ("", ""),
    ):
        with installation.db.transaction() as session, pytest.raises(NotAuthenticated):
            registry.authenticate_agent(session, name, candidate, hasher=hasher, address="x")


def test_names_with_a_slash_or_spaces_are_refused(installation: Installation) -> None:
    for bad in ("a/b", "", " a", "x" * 101, "-a"):
        with installation.db.transaction() as session, pytest.raises(InvalidInput):
            registry.add_agent(session, bad, hasher=installation.hasher)


def test_remove_revokes_the_token_and_a_name_can_be_added_again(
    installation: Installation, process_env: Environment
) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        old = registry.add_agent(session, "site-a", hasher=hasher)
    code, output = run("agent", "remove", "site-a")
    assert code == 0, output
    assert "removed" in output
    with installation.db.transaction() as session, pytest.raises(NotAuthenticated):
        registry.authenticate_agent(session, "site-a", old, hasher=hasher, address="x")
    with installation.db.transaction() as session, pytest.raises(NotFound):
        registry.remove_agent(session, "site-a")
    with installation.db.transaction() as session:
        new = registry.add_agent(session, "site-a", hasher=hasher)
    with installation.db.transaction() as session:
        registry.authenticate_agent(session, "site-a", new, hasher=hasher, address="x")
        with pytest.raises(Conflict):
            registry.add_agent(session, "site-a", hasher=hasher)


def test_list_shows_contact_and_online_by_three_poll_intervals(
    installation: Installation, process_env: Environment
) -> None:
    hasher = installation.hasher
    with installation.db.transaction() as session:
        token = registry.add_agent(session, "site-a", hasher=hasher)
        registry.add_agent(session, "site-b", hasher=hasher)
    with installation.db.transaction() as session:
        registry.authenticate_agent(session, "site-a", token, hasher=hasher, address="x")
    code, output = run("agent", "list")
    assert code == 0, output
    lines = {line.split()[0]: line for line in output.splitlines()[1:] if line.strip()}
    assert "online" in lines["site-a"].split()
    assert "offline" in lines["site-b"].split() and "never" in lines["site-b"]
    now = utcnow()
    with installation.db.read() as session:
        views = {v.name: v for v in registry.list_agents(session, poll_secs=30, now=now)}
        later = registry.list_agents(session, poll_secs=30, now=now + timedelta(seconds=91))
    assert views["site-a"].online and not views["site-b"].online
    assert not [v for v in later if v.online]


def test_agent_run_needs_a_token_and_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRINTSRV_AGENT_TOKEN", raising=False)
    monkeypatch.delenv("PRINTSRV_DATABASE_URL", raising=False)
    code, output = run("agent", "run", "--server", "http://127.0.0.1:9", "--name", "site-a")
    assert code == 2 and "PRINTSRV_AGENT_TOKEN" in output


def test_agent_run_stops_when_the_central_server_refuses_its_token(
    live_server: LiveServer, installation: Installation, tmp_path: Path
) -> None:
    with installation.db.transaction() as session:
        registry.add_agent(session, "site-a", hasher=installation.hasher)
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token\n")
    code, output = run(
        "agent", "run", "--server", live_server.url, "--name", "site-a",
        "--token-file", str(token_file), "--cups", "127.0.0.1:9",
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    assert code == 1 and "refused" in output
