"""Set-up traps (issue 14, items 4-6) as an admin meets them: the real `python -m printsrv`
in another directory and on a terminal, a live server's JSON-RPC, and the first start."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import LiveServer, ServeProcess, open_jsonrpc, rpc, set_config, wait_until

from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment

ADMIN_PASSWORD = "admin-password"  # what open_jsonrpc sets


def command_env(env: Environment | None, **extra: str) -> dict[str, str]:
    """The process environment for `python -m printsrv`: this test's installation, or none."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRINTSRV_")}
    if env is not None:
        base |= {
            "PRINTSRV_HOME": str(env.home),
            "PRINTSRV_DATABASE_URL": env.database_url,
            "PRINTSRV_SECRET_KEY": env.secret_key or "",
        }
    return base | extra


def printsrv(*args: str, env: dict[str, str], cwd: Path, input: str = "") -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "printsrv", *args],
        env=env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def on_a_terminal(
    args: list[str], env: dict[str, str], cwd: Path, answers: list[str]
) -> tuple[int, str, int]:
    """Run `python -m printsrv ARGS` on a pseudo-terminal, typing one answer per prompt.

    Returns the exit status, what the terminal showed, and how many prompts were answered.
    """
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "printsrv", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        close_fds=True,
    )
    os.close(slave)
    shown, since_answer, answered = b"", b"", 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            since_answer += chunk
            if since_answer.rstrip(b" ").endswith(b":") and answered < len(answers):
                os.write(master, answers[answered].encode() + b"\r")
                answered += 1
                since_answer = b""
        return process.wait(10), shown.decode(errors="replace"), answered
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


# --- 4 ------------------------------------------------------------------------------------------


def test_the_real_command_in_another_directory_creates_nothing(tmp_path: Path) -> None:
    code, output = printsrv(
        "config", "set", "web-login.ttp.enable", "Y", env=command_env(None), cwd=tmp_path
    )
    assert code == 1, output
    assert f"No printsrv installation at {tmp_path.resolve() / 'var'}" in output
    assert "PRINTSRV_HOME" in output and "printsrv init" in output
    assert "Traceback" not in output
    assert list(tmp_path.iterdir()) == []


def test_the_real_command_finds_the_service_installation_through_its_env_file(
    installation: Installation, tmp_path: Path
) -> None:
    env_file = tmp_path / "printsrv.env"
    env = installation.env
    env_file.write_text(
        f"PRINTSRV_HOME={env.home}\nPRINTSRV_DATABASE_URL={env.database_url}\n"
        f"PRINTSRV_SECRET_KEY={env.secret_key}\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    code, output = printsrv(
        "config",
        "set",
        "web-login.ttp.enable",
        "Y",
        env=command_env(None, PRINTSRV_ENV_FILE=str(env_file)),
        cwd=work,
    )
    assert code == 0, output
    assert list(work.iterdir()) == []
    installation.config.refresh()
    assert installation.config.snapshot()["web-login.ttp.enable"] is True


# --- 5 ------------------------------------------------------------------------------------------


@pytest.fixture
def admin(installation: Installation) -> Installation:
    open_jsonrpc(installation, admin=True)
    return installation


def admin_password_is(installation: Installation, password: str) -> bool:
    installation.config.refresh()
    return bool(installation.config.snapshot()["api.restful.auth.password"].matches(password))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_enter_at_the_secret_prompt_changes_nothing(admin: Installation, tmp_path: Path) -> None:
    code, shown, answered = on_a_terminal(
        ["config", "set", "api.restful.auth.password"],
        command_env(admin.env),
        tmp_path,
        ["", ""],
    )
    assert code == 1 and answered == 2, shown
    assert "Repeat for confirmation" in shown and "config unset" in shown
    assert admin_password_is(admin, ADMIN_PASSWORD)
    assert admin.monitor.status(admin.config.snapshot()).value == "READY"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_secret_prompt_asks_twice_and_refuses_short_values(
    admin: Installation, tmp_path: Path
) -> None:
    env = command_env(admin.env)
    code, shown, _ = on_a_terminal(
        ["config", "set", "api.restful.auth.password"], env, tmp_path, ["short-pw", "short-pw"]
    )
    assert code == 1 and "shorter than 12 characters" in shown, shown
    assert "short-pw" not in shown, "hidden input is not echoed, nor quoted in the error"
    assert admin_password_is(admin, ADMIN_PASSWORD)

    new = "a-long-new-admin-password"
    code, shown, answered = on_a_terminal(
        ["config", "set", "api.restful.auth.password"],
        env,
        tmp_path,
        [new, "a-typo-in-the-repeat", new, new],
    )
    assert code == 0 and answered == 4, shown
    assert "do not match" in shown.lower() and new not in shown
    assert admin_password_is(admin, new)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_user_passwords_and_pins_are_asked_twice_on_a_terminal(
    admin: Installation, tmp_path: Path
) -> None:
    with admin.db.transaction() as session:
        users.add_user(session, "janet")
    env = command_env(admin.env)

    code, shown, answered = on_a_terminal(
        ["user", "passwd", "janet"],
        env,
        tmp_path,
        ["janet-password", "janet-typo", "janet-password", "janet-password"],
    )
    assert code == 0 and answered == 4, shown
    assert "do not match" in shown.lower() and "janet-password" not in shown
    with admin.db.read() as session:
        assert users.check_password(session, "janet", "janet-password") is not None

    code, shown, answered = on_a_terminal(
        ["user", "set", "janet", "--pin"], env, tmp_path, ["4711", "4711"]
    )
    assert code == 0 and answered == 2 and "Repeat for confirmation" in shown, shown


@pytest.fixture
def server(admin: Installation) -> Iterator[LiveServer]:
    with admin.db.transaction() as session:
        users.add_user(session, "janet", password="janet-password")
    live = LiveServer(admin).start()
    yield live
    live.stop()


def refused(answer: dict) -> str:
    assert answer["result"] is False and "error" in answer, answer
    return str(answer["error"])


def test_json_rpc_cannot_set_a_short_admin_password(
    server: LiveServer, admin: Installation
) -> None:
    for value in ("", "short"):
        refused(
            rpc(server, "setConfigProperty", {"name": "api.restful.auth.password", "value": value})
        )
    assert admin_password_is(admin, ADMIN_PASSWORD)


def test_json_rpc_user_passwords_obey_the_minimum_length(
    server: LiveServer, admin: Installation
) -> None:
    error = refused(
        rpc(server, "addInternalUser", {"user": {"userName": "rijk", "password": "seven-7"}})
    )
    assert "shorter than 8 characters" in error and "seven-7" not in error
    error = refused(
        rpc(server, "setUserProperties", {"user": {"userName": "janet", "password": "short"}})
    )
    assert "shorter than 8" in error
    refused(rpc(server, "setConfigProperty", {"name": "user.password.min-length", "value": "0"}))
    assert "error" not in rpc(
        server, "setConfigProperty", {"name": "user.password.min-length", "value": "16"}
    )
    refused(
        rpc(
            server,
            "setUserProperties",
            {"user": {"userName": "janet", "password": "fifteen-chars-x"}},
        )
    )
    with admin.db.read() as session:
        assert users.find_user(session, "rijk") is None, "a refused call changes nothing"
        assert users.check_password(session, "janet", "janet-password") is not None
    answer = rpc(server, "authUserSource", {"username": "janet", "password": "janet-password"})
    assert answer["result"]["data"]["value"] is True


# --- 6 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_first_start_password_file_goes_once_the_password_is_changed(
    tmp_path: Path, database_url: str
) -> None:
    home = tmp_path / "home"
    env = {"PRINTSRV_HOME": str(home), "PRINTSRV_DATABASE_URL": database_url}
    env["PRINTSRV_SECRET_KEY"] = ""
    server = ServeProcess(env, log=tmp_path / "serve.log").start()
    password_file = home / "initial-admin-password"
    try:
        first = password_file.read_text().strip()
        assert first not in server.output()
        echo = f"http://127.0.0.1:{server.port}/restful/v1/tests/echo"
        assert httpx.post(echo, auth=("admin", first), content="x").status_code == 200
        new = "the-admin-chose-this-one"
        code, output = printsrv(
            "config",
            "set",
            "api.restful.auth.password",
            env=command_env(None, **env),
            cwd=tmp_path,
            input=new + "\n",
        )
        assert code == 0, output
        assert not password_file.exists()
        wait_until(
            lambda: httpx.post(echo, auth=("admin", new), content="x").status_code == 200,
            timeout=5,
        )
    finally:
        server.stop()


def test_a_running_server_removes_the_file_when_another_machine_changes_the_password(
    installation: Installation, environment: Environment
) -> None:
    from printsrv.operations.installation import ensure_first_admin, open_installation

    first = ensure_first_admin(installation)
    assert first is not None
    server = LiveServer(installation).start()
    try:
        other = open_installation(environment)
        try:
            set_config(other, {"api.restful.auth.password": "set-on-another-machine"})
        finally:
            other.db.dispose()
        wait_until(lambda: not first.password_file.exists(), timeout=5)
    finally:
        server.stop()
