"""Credentials and addresses: keyed hashes, Basic auth, CIDR allowlists, trusted proxies,
and the rule that credentials travel only over TLS unless the client is on loopback.

Every adapter checks its callers with these pieces, so a rule (constant-time comparison,
which forwarded headers to believe) is written once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from netaddr import AddrFormatError, IPAddress, IPSet

from printsrv.errors import NotAuthenticated, TlsRequired

DIGEST_PREFIX = "hmac-sha256$"
SEALED_PREFIX = "fernet$"


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose ("config-secrets", "login-tokens", ...) from the installation secret.

    HKDF keeps the keys independent: learning one reveals neither the secret nor the others.
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return hkdf.derive(secret)


FINGERPRINT_PREFIX = "hkdf-sha256$"


def secret_fingerprint(secret: bytes) -> str:
    """What the database keeps to recognise the installation secret: a key derived from it
    for that one purpose, so the stored value reveals neither the secret nor any other key."""
    return FINGERPRINT_PREFIX + derive_key(secret, "printsrv installation secret fingerprint").hex()


class SecretHasher:
    """Keyed hashes (HMAC-SHA-256) of secrets that are only ever compared, and sealing of
    credentials printsrv must itself present to others.

    API keys, admin passwords and user UUIDs are checked on every API call, so a slow
    password hash is out of the question; a keyed hash keeps the database alone from
    revealing them, because the key comes from the installation secret, not the database.
    A credential such as the LDAP bind password cannot be hashed, so it is sealed
    (authenticated encryption, Fernet) with another key derived from the same secret.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(key, "config credentials")))

    def seal(self, credential: str) -> str:
        """The stored form of a credential printsrv needs to read back."""
        return SEALED_PREFIX + self._fernet.encrypt(credential.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str) -> str:
        """The credential behind `sealed`; ValueError when it was sealed with another key."""
        if not sealed.startswith(SEALED_PREFIX):
            raise ValueError("not a sealed credential")
        try:
            token = sealed[len(SEALED_PREFIX) :].encode("ascii")
            return self._fernet.decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise ValueError("sealed with another installation secret") from None

    def __repr__(self) -> str:
        return "SecretHasher([secure])"

    def digest(self, secret: str) -> str:
        """The stored form of `secret`."""
        # hmac.digest is OpenSSL's one-shot HMAC: same bytes as hmac.new(...), without the
        # HMAC object's Python calls, and this runs for every credential of every request.
        return DIGEST_PREFIX + hmac.digest(self._key, secret.encode("utf-8"), "sha256").hex()

    def matches(self, candidate: str | None, digest: str | None) -> bool:
        """Whether `candidate` is the secret behind `digest`, in constant time.

        An empty or missing digest matches nothing, so an unset key never lets anyone in.
        """
        if not digest or not digest.startswith(DIGEST_PREFIX) or candidate is None:
            return False
        return hmac.compare_digest(self.digest(candidate), digest)


def equals_constant_time(a: str, b: str) -> bool:
    """String equality whose time does not depend on where the strings differ."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True)
class BasicCredentials:
    """A user name and password from an `Authorization: Basic` header."""

    username: str
    password: str = field(repr=False)


MAX_AUTHORIZATION_LENGTH = 4096


def parse_basic_authorization(header: str | None) -> BasicCredentials:
    """Decode `Authorization: Basic base64(user:password)`.

    Raises NotAuthenticated with a readable reason for a missing, non-Basic or malformed
    header; the reason never contains the credentials.
    """
    if not header:
        raise NotAuthenticated("Authentication required: send HTTP Basic credentials")
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise NotAuthenticated("Authorization header is too long")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise NotAuthenticated("Authorization must use the Basic scheme")
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise NotAuthenticated("Authorization header is not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 7617 leaves the charset open; older clients send ISO-8859-1.
        text = raw.decode("latin-1")
    username, colon, password = text.partition(":")
    if not colon or not username:
        raise NotAuthenticated("Basic credentials must have the form user:password")
    return BasicCredentials(username=username, password=password)


class AddressSet:
    """A CIDR set of IPv4/IPv6 networks that answers "is this client in it?" fast.

    netaddr's IPSet does the set arithmetic; its membership test costs tens of
    microseconds in pure Python, which shows on hot paths (JSON-RPC checks every call), so
    answers are remembered per address. The memo is bounded and dies with the set, which
    is rebuilt only when its config property changes.
    """

    _MEMO_LIMIT = 4096

    def __init__(self, networks: list[str]) -> None:
        self.ipset = IPSet(networks)
        self._memo: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.ipset)

    def __len__(self) -> int:
        return len(self.ipset.iter_cidrs())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AddressSet) and self.ipset == other.ipset

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AddressSet({[str(c) for c in self.ipset.iter_cidrs()]})"

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not address:
            return False
        known = self._memo.get(address)
        if known is None:
            known = self._lookup(address)
            if len(self._memo) >= self._MEMO_LIMIT:
                self._memo.clear()
            self._memo[address] = known
        return known

    def _lookup(self, address: str) -> bool:
        try:
            ip = IPAddress(address)
        except (AddrFormatError, ValueError, TypeError):
            return False
        if ip.version == 6 and ip.is_ipv4_mapped():
            ip = ip.ipv4()
        return ip in self.ipset


def parse_cidr_set(text: str) -> AddressSet:
    """Parse a CIDR set ("10.0.0.0/8, 2001:db8::/32 192.168.1.7").

    Raises ValueError naming the first entry that is not an IPv4/IPv6 address or network.
    """
    networks = []
    for item in text.replace(",", " ").split():
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IPv4 or IPv6 address or CIDR network") from None
    return AddressSet(networks)


def format_cidr_set(text: str) -> str:
    """The canonical stored form of a CIDR set: entries as written, comma separated."""
    parse_cidr_set(text)
    return ", ".join(text.replace(",", " ").split())


def address_in(address: str | None, allowed: AddressSet) -> bool:
    """Whether `address` (IPv4, IPv6, or IPv4-mapped IPv6) is inside `allowed`."""
    return address in allowed


@functools.lru_cache(maxsize=4096)
def is_loopback(address: str | None) -> bool:
    """Whether `address` is on this machine's loopback interface (IPv4-mapped IPv6 too)."""
    # Memoised: parsing an address costs more than the rest of a systemStatus call, and a
    # server sees few distinct client addresses (the cache is bounded for the odd flood).
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    # A dual-stack socket (`--host ::`) reports an IPv4 client as ::ffff:a.b.c.d, which
    # Python does not call loopback even for 127.0.0.1.
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@dataclass(frozen=True)
class Client:
    """Who is calling, after believing the forwarded headers of trusted proxies only.

    host/port:      the client address (the direct peer, or the address a trusted proxy
                    names in X-Forwarded-For) and the direct peer's port.
    scheme:         "https" when the client reached us over TLS (directly or at the proxy).
    server_name/
    server_port:    the host and port the client addressed.
    via_proxy:      True when a trusted proxy forwarded the request.
    """

    host: str
    port: int | None
    scheme: str
    server_name: str
    server_port: int | None
    via_proxy: bool


def _split_host_port(value: str, default_port: int | None) -> tuple[str, int | None]:
    value = value.strip()
    if value.startswith("["):  # [ipv6]:port
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    port = int(port_text) if port_text.isdigit() and len(port_text) <= 5 else default_port
    return host, port


def resolve_client(
    *,
    peer: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    scheme: str,
    headers: dict[str, str],
    trusted_proxies: AddressSet,
) -> Client:
    """Resolve the real client of a request.

    X-Forwarded-For/-Proto/-Host/-Port are believed only when the direct peer is a trusted
    proxy; the client is then the right-most address in X-Forwarded-For that is not itself a
    trusted proxy, since entries left of it could have been written by anyone.
    `headers` maps lower-case names to values.
    """
    peer_host, peer_port = peer if peer else ("", None)
    default_port = server[1] if server else None
    host_header = headers.get("host", "")
    server_name, server_port = _split_host_port(host_header, default_port)
    if not server_name and server:
        server_name = server[0]
    if not (peer_host and address_in(peer_host, trusted_proxies)):
        return Client(peer_host, peer_port, scheme, server_name, server_port, False)

    client_host = peer_host
    forwarded_for = headers.get("x-forwarded-for")
    if forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        client_host = hops[0] if hops else peer_host
        for hop in reversed(hops):
            if not address_in(hop, trusted_proxies):
                client_host = hop
                break
    proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        scheme = proto
    forwarded_host = headers.get("x-forwarded-host", "").split(",")[-1].strip()
    fallback_port = 443 if scheme == "https" else 80
    if forwarded_host:
        server_name, server_port = _split_host_port(forwarded_host, fallback_port)
    elif proto:
        server_port = fallback_port
    forwarded_port = headers.get("x-forwarded-port", "").split(",")[-1].strip()
    if forwarded_port.isdigit() and len(forwarded_port) <= 5:
        server_port = int(forwarded_port)
    return Client(client_host, peer_port, scheme, server_name, server_port, True)


def credentials_may_travel(client: Client) -> bool:
    """Whether a request from `client` may carry credentials (a password, a key, a session).

    Only over TLS: directly (the ASGI scope's scheme is https) or at a trusted proxy that
    says so with `X-Forwarded-Proto: https` (`resolve_client` believes nothing else); or
    from loopback, where nothing travels over a network. The one rule for every API.
    """
    return client.scheme == "https" or is_loopback(client.host)


def require_tls(client: Client, service: str) -> None:
    """Raise TlsRequired unless `credentials_may_travel(client)`; `service` names the API."""
    if not credentials_may_travel(client):
        raise TlsRequired(
            f"{service} needs https (directly, or through a trusted proxy) off loopback: "
            "TLS is required to send credentials",
            reason="https",
        )
