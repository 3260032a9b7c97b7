"""The environment and the installation secret (printsrv/platform/environment.py)."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from printsrv.errors import ConfigError
from printsrv.platform.environment import Environment, installation_secret, load_environment


def test_defaults_put_a_sqlite_file_under_the_home(tmp_path: Path) -> None:
    env = load_environment({"PRINTSRV_HOME": str(tmp_path / "h")})
    assert env.home == tmp_path / "h"
    assert env.database_url == f"sqlite:///{tmp_path / 'h' / 'printsrv.db'}"
    assert env.secret_key is None


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        load_environment({"PRINTSRV_SECRET_KEY": "short"})


def test_secret_key_never_shows_in_repr() -> None:
    env = load_environment({"PRINTSRV_SECRET_KEY": "z" * 40})
    assert "zzzz" not in repr(env)


def test_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    env = Environment(home=tmp_path / "home", database_url="sqlite://")
    first = installation_secret(env)
    assert installation_secret(env) == first
    mode = stat.S_IMODE((tmp_path / "home" / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert len(first) >= 32


def test_concurrent_first_starts_agree_on_one_secret(tmp_path: Path) -> None:
    env = Environment(home=tmp_path / "home", database_url="sqlite://")
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(installation_secret(env))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["secret.key"]


def test_environment_secret_wins_over_the_file(tmp_path: Path) -> None:
    env = Environment(home=tmp_path / "home", database_url="sqlite://", secret_key="e" * 40)
    assert installation_secret(env) == b"e" * 40
    assert not (tmp_path / "home" / "secret.key").exists()
