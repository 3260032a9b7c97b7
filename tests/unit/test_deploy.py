"""The deployment files in deploy/: they parse, hold what production needs, and build."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import dockerfile
import yaml
from support import make_certificate, require_programs

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_systemd_unit_runs_printsrv_hardened_under_its_own_user() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "printsrv.service")
    service = unit["Service"]
    assert service["User"] == "printsrv" and service["Group"] == "printsrv"
    assert "printsrv serve" in service["ExecStart"]
    assert service["EnvironmentFile"] == "/etc/printsrv/printsrv.env"
    for key, value in {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, key
    assert "/var/lib/printsrv" in service["ReadWritePaths"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_environment_file_names_what_the_unit_uses() -> None:
    names = {
        line.split("=", 1)[0].lstrip("# ")
        for line in (DEPLOY / "printsrv.env").read_text().splitlines()
        if "=" in line
    }
    unit = (DEPLOY / "printsrv.service").read_text()
    for used in ("PRINTSRV_LISTEN_HOST", "PRINTSRV_LISTEN_PORT", "PRINTSRV_WORKERS"):
        assert used in unit and used in names
    assert {"PRINTSRV_HOME", "PRINTSRV_DATABASE_URL", "PRINTSRV_SECRET_KEY"} <= names


def test_containerfile_parses_and_runs_unprivileged_with_a_healthcheck() -> None:
    commands = dockerfile.parse_file(str(DEPLOY / "Containerfile"))
    by_cmd: dict[str, list[tuple[str, ...]]] = {}
    for command in commands:
        by_cmd.setdefault(command.cmd.upper(), []).append(command.value)
    assert all(":" in value[0] and not value[0].endswith(":latest") for value in by_cmd["FROM"])
    assert by_cmd["USER"][-1] == ("printsrv",)
    assert "HEALTHCHECK" in by_cmd and "ENTRYPOINT" in by_cmd
    assert any("deploy/build.sh" in " ".join(v) for v in by_cmd["RUN"]), "same steps as build.sh"
    for run in by_cmd["RUN"]:
        text = " ".join(run)
        if "apt-get install" in text:
            assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists" in text


def test_compose_file_runs_printsrv_with_postgresql_and_cups() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"printsrv", "postgres", "cups"}
    env = services["printsrv"]["environment"]
    assert env["PRINTSRV_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["printsrv"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]


def test_nginx_example_passes_nginx_t(tmp_path: Path) -> None:
    require_programs("nginx")
    cert, key = make_certificate(tmp_path)
    site = (DEPLOY / "nginx" / "printsrv.conf").read_text()
    site = site.replace("/etc/ssl/certs/print.example.edu.pem", str(cert))
    site = site.replace("/etc/ssl/private/print.example.edu.key", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp_path}/body;\n"
        f" include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "X-Forwarded-Proto" in site and "X-Forwarded-For" in site


def test_build_script_installs_a_working_printsrv(tmp_path: Path) -> None:
    """The Containerfile's build step, run as a plain script (no container engine here)."""
    result = subprocess.run(
        [str(DEPLOY / "build.sh"), str(tmp_path / "opt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("printsrv, version")
    version = subprocess.run(
        [str(tmp_path / "opt" / ".venv" / "bin" / "printsrv"), "--help"],
        capture_output=True,
        text=True,
    )
    assert "serve" in version.stdout
