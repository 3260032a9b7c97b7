"""Who may call which REST service: admin (Basic credentials + address allowlist), and users
(user name + UUID as Basic credentials).

Both kinds carry credentials, so both need TLS off loopback (`security.require_tls`), and
user services are closed while the system is in maintenance
(`system.keep_users_out_in_maintenance`); every user service comes through
`user_credentials`, so neither rule is repeated in a view. Checking the credentials against
the database is the services' work (`people.users.authenticate_refs`), so a service that
needs the caller and someone else (a transfer's recipient) finds both in one query.
"""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request

from printsrv.errors import NotAllowed, NotAuthenticated
from printsrv.http import client_of, header_in, installation_of
from printsrv.operations.status import keep_users_out_in_maintenance
from printsrv.people.models import User
from printsrv.people.users import UserRef, authenticate_refs, authenticate_uuid
from printsrv.platform.security import (
    BasicCredentials,
    address_in,
    equals_constant_time,
    parse_basic_authorization,
    require_tls,
)


def require_admin(request: Request, credentials: BasicCredentials | None = None) -> str:
    """Let the REST admin in, or raise; returns the admin user name.

    `credentials`: the Basic credentials when the caller has parsed them already.

    The address check comes first (403), then TLS off loopback (403), then the credentials
    (401), in JSON-RPC's order, against the current config:
    `api.restful.ip-addresses-allowed` (void allows everyone), `api.restful.auth.username`
    and `api.restful.auth.password`. Maintenance does not apply: the admin works during it.
    """
    snapshot = installation_of(request).config.snapshot()
    allowed = snapshot.cidr_set("api.restful.ip-addresses-allowed")
    client = client_of(request)
    if allowed and not address_in(client.host, allowed):
        raise NotAllowed(f"Client address {client.host} is not allowed to use the admin services")
    require_tls(client, "The REST admin API")
    if credentials is None:
        credentials = parse_basic_authorization(header_in(request.scope, b"authorization"))
    username_ok = equals_constant_time(credentials.username, snapshot["api.restful.auth.username"])
    password_ok = snapshot["api.restful.auth.password"].matches(credentials.password)
    if not (username_ok and password_ok and snapshot["api.restful.auth.username"]):
        raise NotAuthenticated("Wrong admin user name or password")
    return credentials.username


def require_user(request: Request) -> User:
    """Let a user in with their name (or alias) and UUID as Basic credentials, or raise 401.

    Returns the user, detached from its session (its columns stay readable). Views that
    go on to use the database check the caller in their own session instead, with
    `authenticate_caller`, or hand `user_credentials` to a service that checks them:
    one transaction per request rather than two.
    """
    credentials = user_credentials(request)
    with installation_of(request).db.read() as session:
        return authenticate_user(session, request, credentials)


def user_credentials(request: Request) -> BasicCredentials:
    """The gate of every REST user service: TLS off loopback (403), not in maintenance
    (503), then the Basic credentials (401 when missing or malformed).

    Both checks come before the credentials are read, so a refused request is refused
    whoever sent it, and changes nothing.
    """
    require_tls(client_of(request), "The REST user API")
    keep_users_out_in_maintenance(installation_of(request).config.snapshot())
    return parse_basic_authorization(header_in(request.scope, b"authorization"))


def authenticate_user(
    session: Session, request: Request, credentials: BasicCredentials | None = None
) -> User:
    """`require_user` in the caller's session (one query); 401 for wrong credentials."""
    if credentials is None:
        credentials = user_credentials(request)
    return authenticate_uuid(
        session, credentials.username, credentials.password, hasher=installation_of(request).hasher
    )


def authenticate_caller(session: Session, request: Request) -> UserRef:
    """The caller, in the caller's session (one query); 401 unless their name and UUID match."""
    credentials = user_credentials(request)
    caller, _ = authenticate_refs(
        session, credentials.username, credentials.password, hasher=installation_of(request).hasher
    )
    return caller
