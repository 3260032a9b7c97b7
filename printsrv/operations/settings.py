"""The config properties as the admin console's Settings page shows and changes them.

Reading and writing go through `printsrv.platform.properties` (`describe`, `set_property`),
the same service as `printsrv config set` and JSON-RPC's `setConfigProperty`: the value is
validated by the property's own rule, a secret stored as a keyed hash (a credential
sealed), the change recorded with who made it (`updated_by`) and the revision token bumped,
so every server applies it within a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.errors import ConfigError
from printsrv.operations.installation import Installation
from printsrv.platform import properties as config
from printsrv.platform.models import ConfigProperty
from printsrv.platform.security import equals_constant_time

__all__ = ["ENTRIES_DIFFER", "SettingView", "change_setting", "list_settings"]

ENTRIES_DIFFER = "The two entries differ: type the new value twice, the same both times."


@dataclass(frozen=True)
class SettingView:
    """One property as the page shows it.

    value: the stored value, or the default when none is stored; for a secret or a
    credential only "set" or "not set", never the value.
    masked: a secret or credential (changed through a confirm-twice field).
    """

    name: str
    help: str
    kind: str
    value: str
    default: str
    masked: bool
    is_set: bool
    updated_at: datetime | None
    updated_by: str


def _masked(prop: config.Property) -> bool:
    return prop.secret or prop.kind in ("secret", "credential")


def list_settings(session: Session) -> list[SettingView]:
    """Every config property, sorted by name, with its value (secrets masked)."""
    rows = {row.name: row for row in session.scalars(select(ConfigProperty))}
    shown = []
    for prop, _ in config.describe(session):
        row = rows.get(prop.name)
        masked = _masked(prop)
        value = row.value if row is not None else prop.default
        if masked:
            value = "set" if value else "not set"
        shown.append(
            SettingView(
                name=prop.name,
                help=prop.help,
                kind=prop.kind,
                value=value,
                default="" if masked else prop.default,
                masked=masked,
                is_set=row is not None,
                updated_at=row.updated_at if row is not None else None,
                updated_by=row.updated_by if row is not None else "",
            )
        )
    return sorted(shown, key=lambda s: s.name)


def change_setting(
    installation: Installation, *, name: str, value: str, confirm: str | None, actor: str
) -> None:
    """Set property `name` to `value` through the properties service, in one transaction.

    A secret or credential needs `confirm` equal to `value` (typed twice). Raises
    ConfigError with the reason (unknown name, a value its rule refuses, entries that
    differ); the message never contains a secret's value.
    """
    prop = config.get_definition(name)
    if _masked(prop) and (confirm is None or not equals_constant_time(value, confirm)):
        raise ConfigError(ENTRIES_DIFFER)
    with installation.db.transaction() as session:
        config.set_property(session, name, value, hasher=installation.hasher, actor=actor)
