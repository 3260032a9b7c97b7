"""Set-up traps (issue 14, items 4-6): which commands may create an installation, how the
command finds a service's installation, secret prompts, password lengths, and the first
admin password file. In-process with click's CliRunner; tests/e2e/test_setup_traps.py runs
the real command on a terminal and against a live server."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from support import TEST_SECRET, set_config

from printsrv.cli import main
from printsrv.errors import ConfigError, InvalidInput
from printsrv.operations.installation import (
    Installation,
    NotInstalled,
    check_installed,
    ensure_first_admin,
    open_installation,
)
from printsrv.people import users
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment, load_environment

# Every variable the commands read, or take from an environment file.
PROCESS_VARIABLES = (
    "PRINTSRV_HOME",
    "PRINTSRV_DATABASE_URL",
    "PRINTSRV_SECRET_KEY",
    "PRINTSRV_ENV_FILE",
    "PRINTSRV_LOG_FORMAT",
    "CUPS_SERVER",
)
ADMIN_PASSWORD = "admin-password-0123"


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def ok(*args: str, input: str | None = None) -> str:
    code, output = run(*args, input=input)
    assert code == 0, output
    return output


def tree(path: Path) -> list[str]:
    """Every file and directory under `path`: what a refused command must leave alone."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No PRINTSRV_* variables, the working directory an empty one; returns that directory.

    Setting each variable before deleting it makes monkeypatch restore the original
    (absent) state even when the command under test copies an env file into os.environ.
    """
    for name in PROCESS_VARIABLES:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work


def use(monkeypatch: pytest.MonkeyPatch, env: Environment) -> None:
    monkeypatch.setenv("PRINTSRV_HOME", str(env.home))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", env.database_url)
    monkeypatch.setenv("PRINTSRV_SECRET_KEY", env.secret_key or "")


# --- 4. no second installation by accident -----------------------------------------------------

REFUSED_COMMANDS = [
    ("config", "set", "web-login.ttp.enable", "Y"),
    ("config", "get", "web-login.ttp.enable"),
    ("config", "list"),
    ("config", "unset", "--yes", "web-login.ttp.enable"),
    ("user", "add", "janet"),
    ("user", "list"),
    ("system", "status"),
    ("backup", "create"),
]


@pytest.mark.parametrize("args", REFUSED_COMMANDS, ids=" ".join)
def test_a_command_in_another_directory_creates_nothing_and_says_where_it_looked(
    bare_env: Path, args: tuple[str, ...]
) -> None:
    code, output = run(*args)
    assert code != 0, output
    home = bare_env / "var"
    assert f"No printsrv installation at {home}" in output, output
    assert "home directory does not exist" in output
    assert "PRINTSRV_HOME=" in output and "printsrv init" in output
    assert "/etc/printsrv/printsrv.env" in output
    assert tree(bare_env) == [], "nothing created: no ./var, no database, no secret"


def test_a_home_whose_database_has_no_printsrv_tables_is_refused_untouched(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = bare_env / "home"
    home.mkdir()
    stranger = home / "printsrv.db"
    engine = create_engine(f"sqlite:///{stranger}")  # some other program's SQLite file
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    engine.dispose()
    before, content = tree(bare_env), stranger.read_bytes()
    monkeypatch.setenv("PRINTSRV_HOME", str(home))
    code, output = run("config", "set", "web-login.ttp.enable", "Y")
    assert code == 1 and "does not hold printsrv's tables" in output, output
    assert f"sqlite:///{stranger}" in output
    assert tree(bare_env) == before and stranger.read_bytes() == content

    stranger.write_bytes(b"")  # an empty file: no tables either
    code, output = run("user", "list")
    assert code == 1 and "does not hold printsrv's tables" in output
    assert tree(bare_env) == before and stranger.read_bytes() == b""


def test_an_empty_postgresql_database_is_refused_and_gets_no_tables(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = os.environ.get("PRINTSRV_TEST_DATABASE_URL") or pytest.skip(
        "PRINTSRV_TEST_DATABASE_URL is not set"
    )
    schema = f"printsrv_empty_{os.getpid()}_{time.monotonic_ns() % 10**6}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        home = bare_env / "home"
        home.mkdir()
        monkeypatch.setenv("PRINTSRV_HOME", str(home))
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        monkeypatch.setenv("PRINTSRV_DATABASE_URL", scoped.render_as_string(hide_password=False))
        monkeypatch.setenv("PRINTSRV_SECRET_KEY", TEST_SECRET)
        code, output = run("config", "set", "web-login.ttp.enable", "Y")
        assert code == 1 and "does not hold printsrv's tables" in output, output
        with admin.connect() as connection:
            assert inspect(connection).get_table_names(schema=schema) == []
        assert tree(bare_env) == ["home"]
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_the_message_hides_a_database_password(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRINTSRV_HOME", str(bare_env / "missing"))
    monkeypatch.setenv(
        "PRINTSRV_DATABASE_URL", "postgresql+psycopg://printsrv:hunter2-secret@127.0.0.1:9/ps"
    )
    code, output = run("config", "get", "web-login.ttp.enable")
    assert code == 1 and "printsrv:***@127.0.0.1:9/ps" in output, output
    assert "hunter2" not in output
    (bare_env / "missing").mkdir()  # the home is there; the database does not answer
    code, output = run("config", "get", "web-login.ttp.enable")
    assert code == 1 and "cannot be reached" in output and "printsrv:***@" in output, output
    assert "hunter2" not in output


def test_init_creates_an_installation_once_then_does_nothing(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = bare_env / "new-home"
    monkeypatch.setenv("PRINTSRV_HOME", str(home))
    output = ok("init")
    assert f"printsrv set up at {home}" in output
    password_file = home / "initial-admin-password"
    assert str(password_file) in output
    password = password_file.read_text().strip()
    assert len(password) >= 20 and password not in output
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert (home / "secret.key").exists() and (home / "printsrv.db").exists()
    ok("config", "set", "web-login.ttp.enable", "Y")  # now the other commands work

    before = tree(home)
    again = ok("init")
    assert "already set up" in again and "nothing changed" in again
    assert password_file.read_text().strip() == password and tree(home) == before
    assert ok("config", "get", "web-login.ttp.enable").strip() == "Y"


def test_init_will_not_give_another_machines_database_a_new_secret(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, environment: Environment
) -> None:
    # The test database is migrated (an installation exists in it); this machine's home is
    # new and PRINTSRV_SECRET_KEY is not set: a generated secret would not match.
    monkeypatch.setenv("PRINTSRV_HOME", str(bare_env / "second-machine"))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", environment.database_url)
    code, output = run("init")
    assert code == 1 and "PRINTSRV_SECRET_KEY" in output, output
    assert tree(bare_env) == []


def test_the_service_env_file_names_the_installation(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: Environment
) -> None:
    service = open_installation(environment)  # the service's installation
    service.db.dispose()
    env_file = tmp_path / "printsrv.env"
    env_file.write_text(
        "# /etc/printsrv/printsrv.env, as deploy/ installs it\n"
        f"PRINTSRV_HOME={environment.home}\n"
        f'PRINTSRV_DATABASE_URL="{environment.database_url}"\n'
        f"PRINTSRV_SECRET_KEY={TEST_SECRET}\n"
        "PRINTSRV_LOG_FORMAT=json\n"
        "\n"
    )
    monkeypatch.setenv("PRINTSRV_ENV_FILE", str(env_file))
    ok("config", "set", "web-login.ttp.enable", "Y")
    assert tree(bare_env) == [], "no ./var beside the command"
    reopened = open_installation(environment, create=False)
    try:
        assert reopened.config.snapshot()["web-login.ttp.enable"] is True
    finally:
        reopened.db.dispose()


def test_a_variable_in_the_environment_wins_over_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "printsrv.env"
    env_file.write_text(
        "PRINTSRV_HOME=/var/lib/printsrv\nPRINTSRV_DATABASE_URL='sqlite:////x.db'\n"
    )
    env = load_environment(
        {"PRINTSRV_ENV_FILE": str(env_file), "PRINTSRV_HOME": str(tmp_path / "mine")}
    )
    assert env.home == tmp_path / "mine" and env.database_url == "sqlite:////x.db"
    with pytest.raises(ConfigError, match="does not exist"):
        load_environment({"PRINTSRV_ENV_FILE": str(tmp_path / "typo.env")})


def test_without_printsrv_home_the_default_env_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from printsrv.platform import environment as settings

    env_file = tmp_path / "printsrv.env"
    env_file.write_text(f"PRINTSRV_HOME={tmp_path / 'service'}\n")
    monkeypatch.setattr(settings, "SERVICE_ENV_FILE", str(env_file))
    assert load_environment({}).home == tmp_path / "service"
    assert load_environment({"PRINTSRV_HOME": str(tmp_path / "h")}).home == tmp_path / "h"


def test_open_installation_without_create_refuses_and_creates_nothing(tmp_path: Path) -> None:
    env = Environment(home=tmp_path / "h", database_url=f"sqlite:///{tmp_path / 'h' / 'p.db'}")
    with pytest.raises(NotInstalled, match="home directory does not exist"):
        open_installation(env, create=False)
    with pytest.raises(NotInstalled):
        check_installed(env)
    assert tree(tmp_path) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_backup_restore_may_still_create_an_installation(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, installation.env)
    ok("backup", "create", "--output", str(tmp_path / "b.tar"))
    target = tmp_path / "restored"
    monkeypatch.setenv("PRINTSRV_HOME", str(target))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", f"sqlite:///{tmp_path / 'restored.db'}")
    ok("backup", "restore", str(tmp_path / "b.tar"))
    ok("config", "get", "web-login.ttp.enable")


# --- 5. secrets: never empty by accident, long enough ------------------------------------------


@pytest.fixture
def admin(process_env: Environment, installation: Installation) -> Installation:
    """This test's installation with a REST admin password set; the CLI points at it."""
    set_config(installation, {"api.restful.auth.password": ADMIN_PASSWORD})
    return installation


def admin_password_is(installation: Installation, password: str) -> bool:
    installation.config.refresh()
    return bool(installation.config.snapshot()["api.restful.auth.password"].matches(password))


@pytest.mark.parametrize("piped", ["\n", ""], ids=["enter", "eof"])
def test_an_empty_piped_secret_is_refused_and_changes_nothing(
    admin: Installation, piped: str
) -> None:
    code, output = run("config", "set", "api.restful.auth.password", input=piped)
    assert code == 1 and "empty" in output and "config unset" in output, output
    assert admin_password_is(admin, ADMIN_PASSWORD)
    assert ok("system", "status").strip() == "READY"


def test_an_empty_secret_argument_is_refused(admin: Installation) -> None:
    code, output = run("config", "set", "api.restful.auth.password", "")
    assert code == 1 and "config unset" in output
    assert admin_password_is(admin, ADMIN_PASSWORD)


@pytest.mark.parametrize(
    "key", ["api.restful.auth.password", "api.jsonrpc.secret-key", "web-login.ttp.apikey"]
)
def test_admin_passwords_and_api_keys_need_12_characters(admin: Installation, key: str) -> None:
    code, output = run("config", "set", key, input="eleven-char\n")
    assert code == 1 and "shorter than 12 characters" in output, output
    assert "eleven-char" not in output
    assert "[secure]" in output
    ok("config", "set", key, input="twelve-chars\n")
    assert admin.config.snapshot()[key].matches("twelve-chars")


def test_the_registry_refuses_short_and_empty_admin_secrets_on_every_path(
    installation: Installation,
) -> None:
    set_config(installation, {"api.restful.auth.password": ADMIN_PASSWORD})
    for value in ("", "tiny-pw", "x" * 11):
        with pytest.raises(ConfigError) as info:
            set_config(installation, {"api.restful.auth.password": value})
        assert "[secure]" in info.value.message and (not value or value not in info.value.message)
    assert admin_password_is(installation, ADMIN_PASSWORD)
    # A password of another system is not printsrv's to judge; empty still unsets it.
    set_config(installation, {"ldap.admin.password": "pw"})
    set_config(installation, {"ldap.admin.password": ""})


def test_config_unset_asks_first(admin: Installation) -> None:
    code, output = run("config", "unset", "api.restful.auth.password", input="n\n")
    assert code == 1 and "Aborted" in output
    assert admin_password_is(admin, ADMIN_PASSWORD)
    output = ok("config", "unset", "api.restful.auth.password", input="y\n")
    assert "api.restful.auth.password unset" in output
    admin.config.refresh()
    assert not admin.config.snapshot()["api.restful.auth.password"].is_set
    assert ok("system", "status").strip() == "SETUP"
    assert "was not set" in ok("config", "unset", "--yes", "api.restful.auth.password")


def test_config_unset_yes_puts_a_property_back_to_its_default(admin: Installation) -> None:
    ok("config", "set", "web-login.session.idle-mins", "5")
    output = ok("config", "unset", "--yes", "web-login.session.idle-mins")
    assert "back to its default (30)" in output
    assert ok("config", "get", "web-login.session.idle-mins").strip() == "30"
    code, output = run("config", "unset", "--yes", "no.such.key")
    assert code == 1 and "does not exist" in output


def test_user_passwords_need_the_minimum_length(admin: Installation) -> None:
    code, output = run("user", "add", "janet", "--password", "seven-7")
    assert code == 1 and "shorter than 8 characters" in output, output
    code, output = run("user", "add", "janet", "--ask-password", input="seven-7\nseven-7\n")
    assert code == 1 and "shorter than 8 characters" in output, output
    assert "janet" not in ok("user", "list")
    ok("user", "add", "janet", "--ask-password", input="eight-88\neight-88\n")
    ok("config", "set", "user.password.min-length", "12")
    code, output = run("user", "add", "rijk", "--password", "eleven-char")
    assert code == 1 and "shorter than 12 characters" in output
    code, output = run("config", "set", "user.password.min-length", "0")
    assert code == 1 and "user.password.min-length" in output
    with admin.db.read() as session:
        assert users.check_password(session, "janet", "eight-88") is not None, (
            "a raised minimum does not lock out older, shorter passwords"
        )


def test_every_service_path_that_sets_a_user_password_checks_its_length(
    installation: Installation,
) -> None:
    with installation.db.transaction() as session:
        janet = users.add_user(session, "janet", password="long-enough")
    for set_it in (
        lambda s: users.add_user(s, "rijk", password="short"),
        lambda s: users.set_password(s, "janet", "short"),
        lambda s: users.update_user(
            s,
            users.get_user(s, "janet"),
            users.UserChanges(password="short"),
            hasher=installation.hasher,
        ),
    ):
        with (
            pytest.raises(InvalidInput, match="shorter than 8"),
            installation.db.transaction() as session,
        ):
            set_it(session)
    with installation.db.read() as session:
        assert users.find_user(session, "rijk") is None
        assert users.check_password(session, janet.user_name, "long-enough") is not None


# --- 6. the first admin password: a private file, gone once changed ---------------------------


def test_first_admin_password_file_is_private_even_with_a_permissive_umask(
    installation: Installation,
) -> None:
    old = os.umask(0)
    try:
        first = ensure_first_admin(installation)
    finally:
        os.umask(old)
    assert first is not None and first.username == "admin"
    assert first.password_file == installation.env.home / "initial-admin-password"
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600
    password = first.password_file.read_text().strip()
    assert admin_password_is(installation, password)
    assert [p.name for p in installation.env.home.iterdir() if p.name.startswith(".")] == [], (
        "no staged file left behind"
    )
    assert ensure_first_admin(installation) is None
    assert first.password_file.read_text().strip() == password


def test_changing_the_password_with_the_cli_deletes_the_file(
    process_env: Environment, installation: Installation
) -> None:
    first = ensure_first_admin(installation)
    assert first is not None
    ok("config", "set", "web-login.ttp.enable", "Y")
    assert first.password_file.exists(), "another property leaves it"
    ok("config", "set", "api.restful.auth.password", input="a-new-admin-password\n")
    assert not first.password_file.exists()


def test_unsetting_the_password_deletes_the_file(
    process_env: Environment, installation: Installation
) -> None:
    first = ensure_first_admin(installation)
    assert first is not None
    ok("config", "unset", "--yes", "api.restful.auth.password")
    assert not first.password_file.exists()


def test_a_change_made_elsewhere_deletes_the_file_on_the_next_refresh(
    environment: Environment, installation: Installation
) -> None:
    first = ensure_first_admin(installation)
    assert first is not None
    installation.config.snapshot()
    other_machine = open_installation(environment)
    try:
        set_config(other_machine, {"api.restful.auth.password": "changed-on-machine-2"})
    finally:
        other_machine.db.dispose()
    time.sleep(config.REFRESH_INTERVAL + 0.05)
    installation.config.snapshot()  # a server's refresher does this every 0.25 s
    assert not first.password_file.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a directory to another user")
def test_root_is_sent_to_the_owner_of_a_service_home(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = bare_env / "service-home"
    home.mkdir()
    os.chown(home, 65534, 65534)  # as /var/lib/printsrv belongs to the printsrv user
    monkeypatch.setenv("PRINTSRV_HOME", str(home))
    for args in (("config", "get", "web-login.ttp.enable"), ("init",)):
        code, output = run(*args)
        assert code == 1 and "run the command as that user" in output, output
        assert "sudo -u" in output
    assert tree(bare_env) == ["service-home"], "root left no file the service could not write"


def test_deploy_readme_finds_the_first_password_in_its_file_not_the_journal() -> None:
    deploy = (Path(__file__).resolve().parents[3] / "deploy" / "README.md").read_text()
    assert "/var/lib/printsrv/initial-admin-password" in deploy
    assert "First start" not in deploy and "journalctl -u printsrv | grep" not in deploy
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    run_it = readme.split("## What it is")[0]
    assert "var/initial-admin-password" in run_it


def test_a_missing_secret_is_not_silently_replaced(
    bare_env: Path, monkeypatch: pytest.MonkeyPatch, environment: Environment
) -> None:
    # Home and tables are there, but neither secret.key nor PRINTSRV_SECRET_KEY: a new
    # secret would make every stored hash of this installation unverifiable.
    home = bare_env / "home"
    home.mkdir()
    monkeypatch.setenv("PRINTSRV_HOME", str(home))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", environment.database_url)
    code, output = run("config", "get", "web-login.ttp.enable")
    assert code == 1 and "secret.key does not exist" in output, output
    assert tree(home) == []
