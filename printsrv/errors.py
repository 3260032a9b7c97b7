"""The exceptions printsrv's services raise; adapters translate them into their envelopes.

    PrintsrvError
    ├── InvalidInput            a value from outside is malformed or out of range
    │   └── ConfigError         a config property name or value is refused
    ├── NotAuthenticated        credentials are missing or wrong
    ├── NotAllowed              the caller is known but may not do this (address, role)
    │   └── TlsRequired         credentials came over plain HTTP from off loopback
    ├── NotFound                the named thing does not exist
    ├── Conflict                the thing already exists, or its state forbids the change
    ├── PayloadTooLarge         a request body is over its cap
    └── ServiceUnavailable      a part printsrv depends on cannot be reached
        ├── DatabaseUnavailable the database does not answer
        └── UnderMaintenance    `system.maintenance` is on: users are kept out

An error with a `retry_after` attribute (seconds) tells adapters what to put in
`Retry-After`.

Each adapter keeps one table from these classes to its own envelope (REST status + JSON,
XML-RPC fault, JSON-RPC error object), chosen by walking the exception's MRO.
"""

from __future__ import annotations


class PrintsrvError(Exception):
    """Base of every error a printsrv service raises on purpose."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # A short machine-friendly pointer (a parameter name, "host:port"); adapters that
        # have a place for it (JSON-RPC's data.reason) show it beside the message.
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class InvalidInput(PrintsrvError):
    """A value that came from outside is malformed or out of range."""


class ConfigError(InvalidInput):
    """A config property is unknown, or a value for it is refused by its validator."""


class NotAuthenticated(PrintsrvError):
    """Credentials are missing, malformed or wrong."""


class NotAllowed(PrintsrvError):
    """The caller is known but may not do this: address outside an allowlist, a disabled feature."""


class NotFound(PrintsrvError):
    """The named user, group, document, queue or account does not exist."""


class Conflict(PrintsrvError):
    """The thing already exists, or its current state forbids the change."""


class PayloadTooLarge(PrintsrvError):
    """A request body is larger than the cap that applies to it."""


class ServiceUnavailable(PrintsrvError):
    """A part printsrv depends on (database, CUPS, user source) cannot be reached right now."""


class DatabaseUnavailable(ServiceUnavailable):
    """The database does not answer; the request changed nothing and may be retried."""


class TlsRequired(NotAllowed):
    """Credentials came over plain HTTP from a client that is not on loopback.

    Raised before they are checked, so nothing is learnt or changed from such a request.
    """


class UnderMaintenance(ServiceUnavailable):
    """The system is in maintenance (`system.maintenance` is Y): users are kept out.

    Nothing was changed; `retry_after` is the pause, in seconds, a client should wait
    before trying again.
    """

    # Maintenance takes minutes, not the seconds a database restart takes: a client that
    # retries sooner only adds load while the admin works.
    retry_after = 60
