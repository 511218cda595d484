"""Access and id tokens: signed JWTs (RS256) with `jti`, and their verification.

An access token carries `iss`, `sub`, `aud` (the FHIR base URL), `iat`, `exp`, `jti`,
`client_id`, `scope` and, when granted, `patient`, `encounter`, `fhirUser` and `roles`.
Verification accepts only RS256 from the server's own keys (so `alg: none`, HMAC tricks and
foreign keys fail), checks `iss`, `aud`, `exp` and the revocation list.
"""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError

from fhir_server.auth.grants import Grant
from fhir_server.auth.keys import ALGORITHM, KeyRing
from fhir_server.fhir.primitives import new_id

_CLOCK_SKEW = 30


class InvalidToken(Exception):
    """A bearer token the server does not accept; the message says why (for `error_description`)."""


def sign(keys: KeyRing, claims: dict) -> str:
    key = keys.signing
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[ALGORITHM])


def access_token(keys: KeyRing, grant: Grant, issuer: str, audience: str, lifetime: int) -> tuple[str, dict]:
    """A signed access token for `grant` and its claims."""
    issued = int(time.time())
    claims = {"iss": issuer, "sub": grant.subject, "aud": audience, "iat": issued, "exp": issued + lifetime,
              "jti": new_id(), "client_id": grant.client_id, "scope": grant.scope}
    optional = {"patient": grant.patient, "encounter": grant.encounter, "fhirUser": grant.fhir_user,
                "roles": list(grant.roles), "username": grant.username}
    claims.update((k, v) for k, v in optional.items() if v)
    return sign(keys, claims), claims


def id_token(keys: KeyRing, grant: Grant, issuer: str, lifetime: int, nonce: str | None) -> str:
    """An OpenID Connect id token naming the user and, as SMART asks, their `fhirUser`."""
    issued = int(time.time())
    claims = {"iss": issuer, "sub": grant.subject, "aud": grant.client_id, "iat": issued,
              "exp": issued + lifetime, "fhirUser": grant.fhir_user, "preferred_username": grant.username}
    if nonce:
        claims["nonce"] = nonce
    return sign(keys, {k: v for k, v in claims.items() if v is not None})


async def verify(keys: KeyRing, token: str, issuer: str, audience: str) -> dict:
    """The claims of a valid access token, else `InvalidToken`."""
    try:
        decoded = jwt.decode(token, keys.public, algorithms=[ALGORITHM])
    except InvalidKeyIdError as error:
        if not await keys.reload_if_stale():
            raise InvalidToken("the token is not signed by this server") from error
        return await verify(keys, token, issuer, audience)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidToken("the token is malformed or its signature is invalid") from error
    claims = decoded.claims
    if decoded.header.get("kid") is None:
        raise InvalidToken("the token is not signed by this server")
    if claims.get("iss") != issuer:
        raise InvalidToken("the token was issued by another server")
    audiences = claims.get("aud")
    if audience not in (audiences if isinstance(audiences, list) else [audiences]):
        raise InvalidToken("the token is meant for another audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + _CLOCK_SKEW < time.time():
        raise InvalidToken("the token has expired")
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("scope"), str):
        raise InvalidToken("the token lacks jti or scope")
    return claims
