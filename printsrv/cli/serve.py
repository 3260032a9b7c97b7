"""`printsrv serve` and `printsrv init`: the commands that may create an installation."""

from __future__ import annotations

import os
import shutil
import sys

import click

from printsrv.cli.common import (
    announce_first_admin,
    open_cli_installation,
    refuse_root_in_a_service_home,
    use_service_env_file,
)
from printsrv.operations.installation import (
    NotInstalled,
    check_installed,
    ensure_first_admin,
    has_schema,
)
from printsrv.platform.environment import describe_database, load_environment

WORKER_HEALTHCHECK_SECS = 30

# --- serve -------------------------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8631, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes."
)
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS certificate (PEM); serve https.",
)
@click.option(
    "--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM)."
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request.",
)
def serve(
    host: str,
    port: int,
    workers: int,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    access_log: bool,
) -> None:
    """Run the server: migrate the database, set up a first admin, serve every API."""
    import uvicorn

    from printsrv.platform.observability import logging_config

    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise click.UsageError("--ssl-certfile and --ssl-keyfile go together")
    installation = open_cli_installation(create=True)
    first = ensure_first_admin(installation)
    installation.db.dispose()
    if first:
        announce_first_admin(first)
    if not access_log:
        os.environ["PRINTSRV_ACCESS_LOG"] = "off"
    os.environ["PRINTSRV_FREEZE_STARTUP_HEAP"] = "on"
    if workers > 1:
        # Each worker counts in files here; /metrics adds them up (prometheus_client's
        # multiprocess mode). Stale files from an earlier run would be added too.
        metrics_dir = installation.env.home / f"metrics-{port}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    cores = len(os.sched_getaffinity(0))
    if workers > cores:
        # Measured (docs/performance.md): 4 workers on 2 cores answer about 14 % fewer
        # requests than 2, for a bare Starlette app as for printsrv.
        click.echo(
            f"note: {workers} workers on {cores} core(s) serve fewer requests than {cores}; "
            "run at most one worker per core",
            err=True,
        )
    scheme = "https" if ssl_certfile else "http"
    click.echo(f"printsrv serving {scheme}://{host}:{port}/ (data in {installation.env.home})")
    sys.stdout.flush()
    uvicorn.run(
        "printsrv.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        proxy_headers=False,  # printsrv decides whom to believe: server.trusted-proxies
        server_header=False,
        log_config=logging_config(),
        access_log=False,  # printsrv writes its own, with the request id
        # uvicorn kills a worker that has not answered its supervisor's ping within this many
        # seconds. Its default (5 s) killed workers still importing and migrating on a busy
        # 2-core machine, in a loop; a worker that is really stuck is still replaced.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECS,
    )


# --- init --------------------------------------------------------------------------------------


@click.command()
def init() -> None:
    """Set up a new installation where the environment points (PRINTSRV_HOME, else the
    service's environment file, else ./var): home, secret, database tables, first REST
    admin. Does nothing when one is set up there already."""
    use_service_env_file()
    env = load_environment()
    refuse_root_in_a_service_home(env.home)
    where = f"{env.home} (database {describe_database(env.database_url)})"
    try:
        check_installed(env)
    except NotInstalled:
        pass
    else:
        click.echo(f"printsrv is already set up at {where}; nothing changed")
        return
    secret_file = env.home / "secret.key"
    if not env.secret_key and not secret_file.exists() and has_schema(env.database_url):
        # Another machine's installation: a new secret here would make every stored hash
        # and token of it unreadable on this machine.
        raise click.ClickException(
            f"The database {describe_database(env.database_url)} holds an installation "
            f"already, but {env.home} has no secret: set PRINTSRV_SECRET_KEY to the one "
            "its other machines use"
        )
    installation = open_cli_installation(create=True)
    try:
        first = ensure_first_admin(installation)
    finally:
        installation.db.dispose()
    click.echo(f"printsrv set up at {where}")
    if first:
        announce_first_admin(first)
