"""The `printsrv` command line (printsrv/cli/), run in-process with click's CliRunner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from printsrv.cli import main
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def ok(*args: str, input: str | None = None) -> str:
    code, output = run(*args, input=input)
    assert code == 0, output
    return output


@pytest.fixture(autouse=True)
def _env(process_env: Environment) -> None:
    """Every command here runs against this test's installation."""


def test_every_verb_has_help() -> None:
    for verb in (
        ["serve"],
        ["config", "get"],
        ["config", "set"],
        ["config", "list"],
        ["user", "add"],
        ["user", "list"],
        ["user", "show"],
        ["user", "uuid"],
        ["user", "disable"],
        ["user", "enable"],
        ["user", "alias", "add"],
        ["group", "add"],
        ["group", "member", "add"],
        ["group", "list"],
    ):
        assert "Usage:" in ok(*verb, "--help"), verb


def test_user_lifecycle(installation: Installation) -> None:
    assert "added" in ok(
        "user",
        "add",
        "Janet",
        "--full-name",
        "Janet J",
        "--email",
        "j@x.edu",
        "--password",
        "pw1-janet",
    )
    ok("user", "alias", "add", "s1", "janet")
    shown = ok("user", "show", "S1")
    assert "janet" in shown and "Janet J" in shown and "s1" in shown
    assert "pw1-janet" not in shown
    listing = ok("user", "list")
    assert "janet" in listing and "s1" in listing
    ok("user", "disable", "janet")
    assert "enabled:    no" in ok("user", "show", "janet")
    ok("user", "enable", "janet")
    with installation.db.read() as session:
        assert users.check_password(session, "janet", "pw1-janet") is not None


def test_uuid_is_shown_only_when_issued(installation: Installation) -> None:
    ok("user", "add", "janet")
    assert "no UUID" in ok("user", "uuid", "janet")
    credential = ok("user", "uuid", "janet", "--regenerate").strip()
    assert len(credential) == 36
    assert credential not in ok("user", "uuid", "janet")
    with installation.db.read() as session:
        users.authenticate_uuid(session, "janet", credential, hasher=installation.hasher)


def test_errors_are_one_line_and_exit_non_zero() -> None:
    ok("user", "add", "janet")
    code, output = run("user", "add", "JANET")
    assert code == 1 and output.strip() == "Error: User 'janet' already exists"
    code, output = run("user", "show", "nobody")
    assert code == 1 and "does not exist" in output
    code, output = run("config", "set", "api.restful.ip-addresses-allowed", "10.0.0.0/33")
    assert code == 1 and "api.restful.ip-addresses-allowed" in output and "10.0.0.0/33" in output
    code, output = run("config", "get", "no.such.key")
    assert code == 1 and "does not exist" in output
    assert "Traceback" not in output


def test_config_set_get_list_masks_secrets() -> None:
    ok("config", "set", "web-login.ttp.enable", "Y")
    assert ok("config", "get", "web-login.ttp.enable").strip() == "Y"
    ok("config", "set", "web-login.ttp.apikey", "topsecret-key")
    assert ok("config", "get", "web-login.ttp.apikey").strip() == "[secure]"
    listing = ok("config", "list")
    assert "topsecret" not in listing and "[secure]" in listing
    assert "web-login.ttp.token.expiry-msecs" in listing


def test_config_set_reads_a_secret_from_stdin(installation: Installation) -> None:
    output = ok("config", "set", "api.jsonrpc.secret-key", input="from-stdin-secret\n")
    assert "from-stdin-secret" not in output
    assert installation.config.snapshot()["api.jsonrpc.secret-key"].matches("from-stdin-secret")


def test_groups() -> None:
    ok("user", "add", "janet")
    ok("group", "add", "Staff")
    ok("group", "member", "add", "staff", "janet")
    assert "staff" in ok("group", "list") and "1" in ok("group", "list")
    assert ok("group", "member", "list", "staff").split() == ["janet"]
    code, output = run("group", "member", "add", "staff", "nobody")
    assert code == 1 and "nobody" in output
