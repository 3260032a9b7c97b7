"""The optional JWT around a job request (ONLYOFFICE Document Builder's pattern).

When `api.jobs.jwt-secret` is set, a POST /restful/v1/jobs body is `{"token": "<JWT>"}`,
an HS256 JWT whose payload is the request itself. PyJWT checks the signature and the
registered time claims (`exp`, `nbf`, when present); only HS256 is accepted, so a token
signed with another algorithm, or with none (`alg: none`), is refused before its payload
is looked at.
"""

from __future__ import annotations

from typing import Any, Final

import jwt

from printsrv.errors import InvalidInput, NotAllowed
from printsrv.platform.properties import Credential

__all__ = ["InvalidJobToken", "unwrap_request"]

ALGORITHMS: Final = ["HS256"]
# Claims a JWT library or issuer may add beside the request; they are not request fields.
_REGISTERED_CLAIMS: Final = frozenset({"exp", "nbf", "iat", "iss", "aud", "sub", "jti"})


class InvalidJobToken(NotAllowed):
    """The request's JWT is missing, malformed, signed with another key or algorithm, or
    expired (the job answer's error -8)."""


def unwrap_request(document: Any, secret: Credential) -> Any:
    """The request inside `document`: the document itself when no secret is set, else the
    verified payload of its token (InvalidJobToken otherwise)."""
    key = secret.reveal()
    has_token = isinstance(document, dict) and "token" in document
    if not key:
        if has_token:
            raise InvalidInput(
                "Field 'token' is not expected: api.jobs.jwt-secret is not set", reason="token"
            )
        return document
    if not has_token or set(document) != {"token"} or not isinstance(document["token"], str):
        raise InvalidJobToken('The body must be {"token": "<JWT of the request>"}')
    try:
        payload = jwt.decode(
            document["token"],
            key,
            algorithms=ALGORITHMS,
            options={"require": [], "verify_aud": False, "verify_iss": False},
        )
    except jwt.PyJWTError as error:
        raise InvalidJobToken(f"Invalid token: {error}") from None
    return {name: value for name, value in payload.items() if name not in _REGISTERED_CLAIMS}
