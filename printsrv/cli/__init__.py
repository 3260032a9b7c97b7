"""The `printsrv` command: serve, and manage config, users, groups, accounts, quotas, printers,
queues, print rules and the documents they hold.

Every command reads PRINTSRV_HOME and PRINTSRV_DATABASE_URL from the environment, brings
the schema up to date, and calls the same services as the APIs in one transaction. One module
per command group, each registered here by name.
"""

from __future__ import annotations

import click

from printsrv.cli import (
    accounts,
    agents,
    backup,
    config,
    groups,
    jobs,
    printers,
    queues,
    quota,
    rules,
    serve,
    system,
    users,
)
from printsrv.cli.common import PrintsrvGroup

__all__ = ["main"]


@click.group(cls=PrintsrvGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="printsrv", prog_name="printsrv")
def main() -> None:
    """printsrv: a print-management server, wire-compatible with SavaPage's public APIs."""


for command in (
    serve.serve,
    serve.init,
    config.config,
    users.user,
    groups.group,
    accounts.account,
    accounts.financial_group,
    printers.printer,
    queues.queue,
    system.system,
    backup.backup,
    jobs.job,
    rules.rule,
    rules.document,
    quota.quota,
    agents.agent,
):
    main.add_command(command)
