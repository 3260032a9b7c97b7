"""Config properties: SavaPage's names, typed values, validation, storage and a shared cache.

The registry `PROPERTIES` is one flat table (`printsrv config list` prints it). Values are
stored as text in the database; secrets (`*.apikey`, `*.secret-key`, `*.password`) as
keyed hashes. A running server reads from an in-memory `Snapshot` and re-reads it when the
one-row revision token moves, on a thread and a connection of its own
(`config_refresh.py`): at once when it hears of the change (PostgreSQL notifications,
printsrv/platform/notifications.py), else by polling the token every `REFRESH_INTERVAL`
seconds. Either way a change made by any process (the CLI, another worker, another
machine) is in force everywhere within a second, under load too.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from financial.errors import InvalidAmount
from financial.money import parse_wire_amount, to_wire
from printsrv.errors import ConfigError, DatabaseUnavailable
from printsrv.platform.config_refresh import ConfigRefresher
from printsrv.platform.database import Database
from printsrv.platform.models import ConfigProperty, ConfigRevision, utcnow
from printsrv.platform.notifications import Listener, Topic
from printsrv.platform.security import AddressSet, SecretHasher, format_cidr_set, parse_cidr_set
from printsrv.platform.threads import in_thread

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 0.25
# A server that has not reached its database for this long no longer trusts its cached
# config (a password may have been changed meanwhile) and answers 503.
STALE_AFTER = 5.0
# While the listener hears every change, the token is still read this often: well within
# STALE_AFTER, so that a listener that falls silent under load (its pings starved) never
# leaves the config untrusted before the next read.
HEARD_POLL_INTERVAL = 2.0


def _yes_no(text: str) -> str:
    value = text.strip().upper()
    if value not in ("Y", "N"):
        raise ValueError("must be Y or N")
    return value


def _integer(minimum: int, maximum: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        text = text.strip()
        if not text.lstrip("-").isdigit():
            raise ValueError("not a whole number")
        value = int(text)
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return str(value)

    return parse


def _cidr_set(text: str) -> str:
    return format_cidr_set(text)


def _text(max_length: int = 255) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        if any(ord(c) < 32 for c in text):
            raise ValueError("contains control characters")
        return text

    return parse


def _choice(*values: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return value

    return parse


def _ldap_filter(text: str) -> str:
    value = text.strip()
    depth = 0
    for char in value:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if not value.startswith("(") or not value.endswith(")") or depth != 0:
        raise ValueError("not an LDAP filter: it must be one parenthesised expression")
    return _text(1024)(value)


def _http_url(text: str) -> str:
    value = text.strip()
    if value and not (value.startswith(("http://", "https://")) and len(value) > 8):
        raise ValueError("not an http:// or https:// URL")
    return _text(1024)(value)


def _cups_server(text: str) -> str:
    # What libcups accepts: a Unix socket path, or host[:port] (IPv6 in brackets).
    value = text.strip()
    if value and not value.startswith("/") and any(c in value for c in " /\\@?#"):
        raise ValueError("not a socket path (/run/cups/cups.sock) or host[:port]")
    return _text(255)(value)


def _amount(minimum: str, maximum: str) -> Callable[[str], str]:
    """A money amount in the wire form ("2.50"), within [minimum, maximum]; stored as "2.500000"."""
    low, high = parse_wire_amount(minimum), parse_wire_amount(maximum)

    def parse(text: str) -> str:
        try:
            value = parse_wire_amount(text.strip())
        except InvalidAmount as error:
            raise ValueError(f"not an amount: {error.message}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {to_wire(low)} and {to_wire(high)}")
        return to_wire(value)

    return parse


def _amount_value(stored: str) -> Decimal:
    # Snapshot expects ValueError for a stored value that no longer validates.
    try:
        return parse_wire_amount(stored)
    except InvalidAmount as error:
        raise ValueError(error.message) from None


# ISO 4217 alphabetic codes in use (currencies, funds, precious metals, testing, "no currency").
_ISO_4217_TEXT = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA
    XXX YER ZAR ZMW ZWG ZWL
"""
ISO_4217_CODES = frozenset(_ISO_4217_TEXT.split())


def _currency_code(text: str) -> str:
    value = text.strip().upper()
    if value not in ISO_4217_CODES:
        raise ValueError("not an ISO 4217 currency code such as EUR, USD or GBP")
    return value


def _time_zone(text: str) -> str:
    value = text.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone such as UTC or Europe/Amsterdam") from None
    return value


def _secret(text: str) -> str:
    if len(text) > 1024:
        raise ValueError("longer than 1024 characters")
    if any(ord(c) < 32 for c in text):
        raise ValueError("contains control characters")
    return text


@dataclass(frozen=True)
class Property:
    """One config property.

    name:      SavaPage's property name.
    default:   stored-form default.
    normalise: validates text and returns its stored form; raises ValueError with a reason.
    kind:      how the stored text is read: "text", "yes-no", "int", "amount" (a Decimal),
               "cidr-set", "secret"
               (keyed hash, compared only), "credential" (sealed, read back to be used),
               "choice".
    help:      one line for `printsrv config list` and the docs.
    secret:    stored as a keyed hash, never shown.
    min_length: the shortest value `set_property` accepts (an empty one included); for the
               secrets printsrv's own callers must guess. Unsetting is `unset_property`.
    """

    name: str
    default: str
    normalise: Callable[[str], str]
    kind: str
    help: str
    secret: bool = False
    min_length: int = 0


# Admin passwords and API keys: every API guessing attempt costs an attacker one request,
# so 12 characters is the floor (NIST SP 800-63B asks 8 of memorised secrets chosen by
# people and allows more for those guarding an administrative interface).
ADMIN_SECRET_MIN_LENGTH = 12
# An HS256 key shorter than the hash (32 bytes) weakens it (RFC 7518, section 3.2).
JWT_SECRET_MIN_LENGTH = 32


PROPERTIES: tuple[Property, ...] = (
    Property(
        "admin.web.group",
        "",
        _text(100),
        "text",
        "members of this user group may log in to the admin console at /admin with their "
        "password, besides the REST admin; void: only the REST admin",
    ),
    Property(
        "agents.lease-secs",
        "300",
        _integer(2, 86_400),
        "int",
        "how long a print agent holds a claimed job without renewing it; then the job may be "
        "fetched again (another attempt)",
    ),
    Property(
        "agents.max-attempts",
        "3",
        _integer(1, 100),
        "int",
        "claims of a remote print job that may fail or lapse before it fails and is refunded",
    ),
    Property(
        "agents.poll-secs",
        "30",
        _integer(1, 300),
        "int",
        "longest wait of a print agent's long-poll; an agent silent for 3 times this is offline",
    ),
    Property(
        "api.convert.ip-addresses-allowed",
        "",
        _cidr_set,
        "cidr-set",
        "CIDR set of clients allowed to call /lool/convert-to without credentials; "
        "void denies everyone",
    ),
    Property(
        "api.convert.max-bytes",
        str(100 * 1024 * 1024),
        _integer(1024, 1024**4),
        "int",
        "largest file /lool/convert-to accepts, in bytes; larger is a 413",
    ),
    Property(
        "api.convert.max-parallel",
        "2",
        _integer(1, 64),
        "int",
        "most /lool/convert-to conversions one server process runs at once; more wait",
    ),
    Property(
        "api.convert.timeout-secs",
        "60",
        _integer(1, 3600),
        "int",
        "time limit of one /lool/convert-to conversion, waiting for a turn included, in seconds",
    ),
    Property(
        "api.jobs.jwt-secret",
        "",
        _secret,
        "credential",
        "HS256 key of the JWT every POST /restful/v1/jobs body must then carry (stored "
        "sealed); void: no token",
        secret=True,
        min_length=JWT_SECRET_MIN_LENGTH,
    ),
    Property(
        "api.jobs.lease-secs",
        "300",
        _integer(2, 86_400),
        "int",
        "a running job's lease: a job whose server stopped renewing it this long runs again",
    ),
    Property(
        "api.jobs.max-parallel",
        "2",
        _integer(1, 64),
        "int",
        "most asynchronous jobs one server process runs at once",
    ),
    Property(
        "api.jobs.result-ttl-secs",
        "86400",
        _integer(1, 31_536_000),
        "int",
        "how long a finished job's answer and result files are kept, in seconds",
    ),
    Property(
        "api.jsonrpc.admin.enable",
        "N",
        _yes_no,
        "yes-no",
        "Y opens the JSON-RPC provisioning methods (users, groups, config, accounts)",
    ),
    Property(
        "api.jsonrpc.batch-max",
        "100",
        _integer(1, 10_000),
        "int",
        "most requests one JSON-RPC batch may hold",
    ),
    Property(
        "api.jsonrpc.ext.ip-addresses-allowed",
        "",
        _cidr_set,
        "cidr-set",
        "CIDR set of clients allowed to call JSON-RPC; void denies everyone",
    ),
    Property(
        "api.jsonrpc.secret-key",
        "",
        _secret,
        "secret",
        "secret the JSON-RPC caller sends as the X-Auth-Key header",
        secret=True,
        min_length=ADMIN_SECRET_MIN_LENGTH,
    ),
    Property(
        "api.restful.auth.password",
        "",
        _secret,
        "secret",
        "password of the REST admin services (HTTP Basic)",
        secret=True,
        min_length=ADMIN_SECRET_MIN_LENGTH,
    ),
    Property(
        "api.restful.auth.username",
        "",
        _text(100),
        "text",
        "user name of the REST admin services (HTTP Basic)",
    ),
    Property(
        "api.restful.ip-addresses-allowed",
        "",
        _cidr_set,
        "cidr-set",
        "CIDR set of clients allowed to call the REST admin services; void allows all",
    ),
    Property(
        "auth.method",
        "internal",
        _choice("internal", "ldap"),
        "choice",
        "user source: internal (printsrv's own users) or ldap (LDAP / Active Directory)",
    ),
    Property(
        "convert.max-pages",
        "2000",
        _integer(1, 100_000),
        "int",
        "most pages a document may have (or become when converted); more is refused",
    ),
    Property(
        "convert.max-parallel",
        "2",
        _integer(1, 64),
        "int",
        "most document conversions to PDF one server runs at once",
    ),
    Property(
        "convert.office.url",
        "",
        _http_url,
        "text",
        "LibreOffice Online / Collabora convert-to URL for office documents; void: local soffice",
    ),
    Property(
        "convert.page-size",
        "a4",
        _choice("a4", "letter"),
        "choice",
        "page size of PDFs made from text and images: a4 or letter",
    ),
    Property(
        "convert.timeout-secs",
        "60",
        _integer(1, 3600),
        "int",
        "time limit of one conversion to PDF, in seconds",
    ),
    Property(
        "cups.server",
        "",
        _cups_server,
        "text",
        "CUPS server: socket path or host[:port]; void: $CUPS_SERVER, else /run/cups/cups.sock",
    ),
    Property(
        "cups.timeout-secs",
        "10",
        _integer(1, 600),
        "int",
        "time limit of one call to the CUPS server, in seconds",
    ),
    Property(
        "financial.credit-limit.default",
        "0.000000",
        _amount("0", "999999999999.999999"),
        "amount",
        "credit of accounts whose credit limit is 'default': how far below zero prints may go",
    ),
    Property(
        "financial.currency-code",
        "EUR",
        _currency_code,
        "text",
        "ISO 4217 code of the currency every amount is in (shown in reports)",
    ),
    Property(
        "financial.idempotency.retention-hours",
        "24",
        _integer(1, 8760),
        "int",
        "how long the first answer to a POST with an Idempotency-Key is kept for its retries",
    ),
    Property(
        "financial.user.transfers.amount-max",
        "100.000000",
        _amount("0.000001", "999999999999.999999"),
        "amount",
        "largest amount a user may transfer to another user at once",
    ),
    Property(
        "financial.user.transfers.amount-min",
        "0.010000",
        _amount("0", "999999999999.999999"),
        "amount",
        "smallest amount a user may transfer to another user",
    ),
    Property(
        "financial.user.transfers.enable",
        "Y",
        _yes_no,
        "yes-no",
        "Y lets users transfer credit to other users (REST /financial/transfer, web app)",
    ),
    Property(
        "ldap.admin.dn",
        "",
        _text(1024),
        "text",
        "DN printsrv binds as to search the directory (void: anonymous)",
    ),
    Property(
        "ldap.admin.password",
        "",
        _secret,
        "credential",
        "password of ldap.admin.dn (stored sealed)",
        secret=True,
    ),
    Property(
        "ldap.basedn",
        "",
        _text(1024),
        "text",
        "where users and groups are searched, e.g. dc=example,dc=edu",
    ),
    Property(
        "ldap.host",
        "",
        _text(255),
        "text",
        "host name or address of the LDAP / Active Directory server",
    ),
    Property(
        "ldap.port",
        "389",
        _integer(1, 65535),
        "int",
        "port of the LDAP server (636 for ldaps)",
    ),
    Property(
        "ldap.schema.group-filter",
        "(objectClass=groupOfNames)",
        _ldap_filter,
        "text",
        "LDAP filter that finds groups",
    ),
    Property(
        "ldap.schema.group-member-field",
        "member",
        _text(100),
        "text",
        "group attribute that lists member DNs",
    ),
    Property(
        "ldap.schema.group-name-field",
        "cn",
        _text(100),
        "text",
        "group attribute that holds its name",
    ),
    Property(
        "ldap.schema.user-email-field",
        "mail",
        _text(100),
        "text",
        "user attribute that holds the email address",
    ),
    Property(
        "ldap.schema.user-filter",
        "(objectClass=person)",
        _ldap_filter,
        "text",
        "LDAP filter that finds users",
    ),
    Property(
        "ldap.schema.user-full-name-field",
        "cn",
        _text(100),
        "text",
        "user attribute that holds the full name",
    ),
    Property(
        "ldap.schema.user-name-field",
        "uid",
        _text(100),
        "text",
        "user attribute that holds the user name (sAMAccountName on AD)",
    ),
    Property(
        "ldap.ssl",
        "N",
        _yes_no,
        "yes-no",
        "Y connects with ldaps (TLS from the first byte)",
    ),
    Property(
        "ldap.starttls",
        "N",
        _yes_no,
        "yes-no",
        "Y upgrades the connection with STARTTLS before binding",
    ),
    Property(
        "ldap.timeout-secs",
        "10",
        _integer(1, 120),
        "int",
        "connect and answer timeout for the LDAP server",
    ),
    Property(
        "print.job.timeout-secs",
        "3600",
        _integer(1, 604_800),
        "int",
        "a print job not finished this long after submission is cancelled and refunded",
    ),
    Property(
        "print.retention-days",
        "30",
        _integer(0, 36_500),
        "int",
        "stored PDFs older than this are removed (the log entry stays); 0 keeps them forever",
    ),
    Property(
        "print.upload.max-bytes",
        str(100 * 1024 * 1024),
        _integer(1024, 1024**4),
        "int",
        "largest file POST /documents/print accepts, in bytes",
    ),
    Property(
        "release.hold-hours",
        "24",
        _integer(1, 8760),
        "int",
        "a document held in a user's inbox can be released for this many hours; then it is "
        "removed, never charged",
    ),
    Property(
        "release.station.idle-secs",
        "30",
        _integer(5, 3600),
        "int",
        "a release station forgets the person after this many seconds without input",
    ),
    Property(
        "release.station.ip-addresses-allowed",
        "",
        _cidr_set,
        "cidr-set",
        "CIDR set of release stations and terminals (/release/PRINTER, POST "
        "/restful/v1/release); void: no station",
    ),
    Property(
        "server.trusted-proxies",
        "",
        _cidr_set,
        "cidr-set",
        "CIDR set of reverse proxies whose X-Forwarded-* headers are believed",
    ),
    Property(
        "system.maintenance",
        "N",
        _yes_no,
        "yes-no",
        "Y keeps users out (REST user services and the web app answer 503, createToken a "
        "fault); systemStatus answers MAINTENANCE",
    ),
    Property(
        "system.time-zone",
        "UTC",
        _time_zone,
        "text",
        "IANA time zone in which scheduled quota periods start (00:00; weeks on Monday, "
        "months on the 1st)",
    ),
    Property(
        "user.password.min-length",
        "8",
        _integer(1, 128),
        "int",
        "fewest characters a user's password may have when it is set (NIST SP 800-63B: 8)",
    ),
    Property(
        "web-login.session.idle-mins",
        "30",
        _integer(1, 10_080),
        "int",
        "web app sessions end after this many minutes without a request",
    ),
    Property(
        "web-login.throttle.address.max-failures",
        "50",
        _integer(1, 100_000),
        "int",
        "failed web logins one client address (IPv6: one /64) may have per window",
    ),
    Property(
        "web-login.throttle.user.max-failures",
        "10",
        _integer(1, 100_000),
        "int",
        "failed web logins one user name may have per window",
    ),
    Property(
        "web-login.throttle.window-secs",
        "900",
        _integer(1, 86_400),
        "int",
        "length of the window in which failed web logins are counted, in seconds",
    ),
    Property(
        "web-login.ttp.apikey",
        "",
        _secret,
        "secret",
        "API key a trusted third party (an LMS) passes to onetime-auth.createToken",
        secret=True,
        min_length=ADMIN_SECRET_MIN_LENGTH,
    ),
    Property(
        "web-login.ttp.apikey.max-failures",
        "10",
        _integer(1, 100_000),
        "int",
        "wrong onetime-auth.createToken API keys one client address (IPv6: one /64) may "
        "send per web-login.throttle.window-secs; then createToken refuses it, right key or not",
    ),
    Property(
        "web-login.ttp.enable",
        "N",
        _yes_no,
        "yes-no",
        "Y lets trusted third parties log users in with one-time tokens",
    ),
    Property(
        "web-login.ttp.token.expiry-msecs",
        "5000",
        _integer(100, 86_400_000),
        "int",
        "lifetime of a one-time login token, in milliseconds",
    ),
)

REGISTRY: dict[str, Property] = {p.name: p for p in PROPERTIES}


def get_definition(name: str) -> Property:
    """The property called `name`; ConfigError if there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"Config property {name!r} does not exist") from None


class SecretValue:
    """A stored secret: it can be compared with a candidate, never read back."""

    __slots__ = ("_digest", "_hasher", "_proven")

    def __init__(self, digest: str, hasher: SecretHasher) -> None:
        self._digest = digest
        self._hasher = hasher
        # The last candidate that matched: checked again with compare_digest alone, which
        # saves an HMAC per call on hot paths (JSON-RPC checks the key on every request).
        self._proven: bytes | None = None

    def __repr__(self) -> str:
        return "SecretValue([secure])" if self._digest else "SecretValue(unset)"

    @property
    def is_set(self) -> bool:
        return bool(self._digest)

    def matches(self, candidate: str | None) -> bool:
        """Whether `candidate` is the secret, in constant time; an unset secret matches nothing."""
        if candidate is None or not self._digest:
            return False
        encoded = candidate.encode("utf-8")
        if self._proven is not None and hmac.compare_digest(encoded, self._proven):
            return True
        if self._hasher.matches(candidate, self._digest):
            self._proven = encoded
            return True
        return False


class Credential:
    """A credential printsrv presents to another system (the LDAP bind password)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Credential([secure])"

    def reveal(self) -> str:
        """The plain credential, to hand to the system that asks for it; never log it."""
        return self._value


def _typed(prop: Property, stored: str, hasher: SecretHasher) -> Any:
    if prop.kind == "secret":
        return SecretValue(stored, hasher)
    if prop.kind == "credential":
        return Credential(hasher.unseal(stored) if stored else "")
    if prop.kind == "cidr-set":
        return parse_cidr_set(stored)
    if prop.kind == "int":
        return int(stored)
    if prop.kind == "amount":
        return _amount_value(stored)
    if prop.kind == "yes-no":
        return stored == "Y"
    return stored


class Snapshot:
    """Every property's typed value at one moment.

    Y/N properties are bools, numbers ints, CIDR sets AddressSets, secrets SecretValues.
    """

    def __init__(self, stored: dict[str, str], hasher: SecretHasher) -> None:
        values: dict[str, Any] = {}
        for prop in PROPERTIES:
            text = stored.get(prop.name, prop.default)
            try:
                values[prop.name] = _typed(prop, text, hasher)
            except ValueError:
                log.error("config property %s holds an invalid value; using its default", prop.name)
                values[prop.name] = _typed(prop, prop.default, hasher)
        self._values = values

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def cidr_set(self, name: str) -> AddressSet:
        value = self._values[name]
        assert isinstance(value, AddressSet)
        return value


# --- services: read and write properties in a session ---------------------------------------


def set_property(
    session: Session, name: str, value: str, *, hasher: SecretHasher, actor: str = ""
) -> None:
    """Validate `value` for property `name` and store it; bumps the revision token.

    Raises ConfigError naming the property and the reason when the name is unknown or the
    value is refused. Secrets are stored as keyed hashes. A secret with a `min_length`
    refuses a shorter value, the empty one included: an empty answer at a prompt must not
    unset the admin password; `unset_property` does that, on purpose. (Other secrets, such
    as ldap.admin.password, belong to other systems; an empty one still unsets them.)
    """
    prop = get_definition(name)
    try:
        normalised = prop.normalise(value)
        if len(normalised) < prop.min_length:
            if not normalised:
                raise ValueError(
                    "it is empty; to unset it, use `printsrv config unset " + name + "`"
                )
            raise ValueError(f"shorter than {prop.min_length} characters")
    except ValueError as error:
        shown = "[secure]" if prop.secret else repr(value)
        raise ConfigError(f"Config property {name!r} has value {shown}: {error}") from None
    if prop.kind == "credential" and normalised:
        normalised = hasher.seal(normalised)
    elif prop.secret and normalised:
        normalised = hasher.digest(normalised)
    row = session.get(ConfigProperty, name)
    if row is None:
        session.add(ConfigProperty(name=name, value=normalised, updated_by=actor))
    else:
        row.value = normalised
        row.updated_at = utcnow()
        row.updated_by = actor
    bump_revision(session)


def unset_property(session: Session, name: str, *, actor: str = "") -> bool:
    """Put property `name` back to its default (a secret: unset); bumps the revision token.

    The one way to unset the admin password or an API key (`printsrv config unset`), so
    that doing so is always a deliberate act. Returns whether a value had been stored.
    """
    get_definition(name)
    row = session.get(ConfigProperty, name)
    if row is None:
        return False
    session.delete(row)
    log.info("config property %s unset by %s", name, actor or "(unknown)")
    bump_revision(session)
    return True


def read_property(session: Session, name: str, *, hasher: SecretHasher | None = None) -> Any:
    """One property's typed value as this session sees it (its default when not stored).

    For services that must obey a property inside their own transaction rather than a
    cached Snapshot (the user-password length, read where passwords are hashed).
    """
    prop = get_definition(name)
    if prop.secret and hasher is None:
        raise ValueError(f"{name} is a secret: pass the hasher to compare it")
    stored = session.scalar(select(ConfigProperty.value).where(ConfigProperty.name == name))
    text = prop.default if stored is None else stored
    try:
        return _typed(prop, text, hasher)  # type: ignore[arg-type]
    except ValueError:
        log.error("config property %s holds an invalid value; using its default", name)
        return _typed(prop, prop.default, hasher)  # type: ignore[arg-type]


def bump_revision(session: Session) -> None:
    """Tell every running server that the config changed."""
    token = str(uuid.uuid4())
    revision = session.get(ConfigRevision, 1)
    if revision is None:
        session.add(ConfigRevision(id=1, token=token))
    else:
        revision.token = token
    session.flush()
    # Every server hears of it at commit: on PostgreSQL a trigger on config_revision
    # (migration 0016_guards) notifies Topic.CONFIG's channel, raw SQL writes included.


def stored_values(session: Session) -> dict[str, str]:
    """The stored text of every property that has been set."""
    return {row.name: row.value for row in session.scalars(select(ConfigProperty))}


def read_revision(session: Session) -> str | None:
    """The current revision token, or None before the first write."""
    return session.scalar(select(ConfigRevision.token).where(ConfigRevision.id == 1))


def describe(session: Session, names: Iterable[str] | None = None) -> list[tuple[Property, str]]:
    """(property, shown value) pairs for display; secrets show as [secure] or (not set)."""
    stored = stored_values(session)
    wanted = [get_definition(n) for n in names] if names is not None else list(PROPERTIES)
    shown = []
    for prop in wanted:
        text = stored.get(prop.name, prop.default)
        if prop.secret:
            text = "[secure]" if text else "(not set)"
        shown.append((prop, text))
    return shown


# --- the cache a running server reads from ---------------------------------------------------


class Config:
    """The config a server runs with: a cached Snapshot kept fresh from the database."""

    def __init__(
        self, db: Database, hasher: SecretHasher, listener: Listener | None = None
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._listener = listener
        # Changes heard of, and how many of them the snapshot includes: while they agree,
        # a listening listener vouches that the snapshot is current.
        self._heard = 0
        self._applied = 0
        if listener is not None:
            listener.on(Topic.CONFIG, self._hear)
            listener.on_connect(self._hear)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._revision: str | None = None
        self._checked_at = 0.0  # monotonic time of the last successful check
        self.stale_after = STALE_AFTER
        self.background = False  # True while `keep_fresh` runs
        # Called with each new Snapshot (first load, and every change by any process), for
        # work that follows a change wherever it was made: the installation removes the
        # initial admin password file once that password is changed.
        self.on_change: list[Callable[[Snapshot], object]] = []

    def snapshot(self) -> Snapshot:
        """The current config; raises DatabaseUnavailable when it can no longer be trusted.

        With a background refresher running this never touches the database; without one
        (the CLI, tests calling services) it checks the revision when the cache is older
        than REFRESH_INTERVAL.
        """
        age = time.monotonic() - self._checked_at
        if self.background and age <= self.stale_after and self._snapshot is not None:
            return self._snapshot  # the common case, first: every request asks, often thrice
        if age > REFRESH_INTERVAL and self._heard == self._applied and self._listener is not None:
            alive_at = self._listener.alive_at
            if alive_at is not None:
                age = min(age, time.monotonic() - alive_at)
        if self._snapshot is None or (not self.background and age > REFRESH_INTERVAL):
            self.refresh()
        elif age > self.stale_after:
            raise DatabaseUnavailable(
                "The database has not answered for a while; the configuration cannot be "
                "trusted. Try again shortly."
            )
        assert self._snapshot is not None
        return self._snapshot

    def _hear(self) -> None:
        self._heard += 1

    def refresh(self, db: Database | None = None) -> None:
        """Re-read the config if its revision token changed (one small query otherwise).

        Through `db` when given (the refresher's own), else the installation's database.
        """
        heard = self._heard
        with self._lock, (db or self._db).read() as session:
            revision = read_revision(session)
            changed = self._snapshot is None or revision != self._revision
            if changed:
                self._snapshot = Snapshot(stored_values(session), self._hasher)
                self._revision = revision
            self._checked_at = time.monotonic()
            self._applied = heard
            snapshot = self._snapshot
        if changed:
            for listener in self.on_change:
                try:
                    listener(snapshot)
                except Exception:
                    # A listener's failure must not stop the config from being served.
                    log.exception("config change listener failed")

    async def keep_fresh(self, interval: float = REFRESH_INTERVAL) -> None:
        """Keep the config fresh until cancelled (run from the app's lifespan).

        On a thread and a connection of its own (`platform/config_refresh.py`): the shared
        work threads and pool may all be busy under load, and a change must still be in
        force within a second. It re-reads when the listener hears of a change (or
        reconnects), and polls every `interval` seconds while it does not listen.
        """
        refresher = ConfigRefresher(
            self.refresh, self._db.url, interval, HEARD_POLL_INTERVAL, self._listener
        )
        self.background = True
        refresher.start()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            self.background = False
            await in_thread(refresher.stop)
