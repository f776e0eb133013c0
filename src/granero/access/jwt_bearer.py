"""JWT bearer credentials, verified against keys from a file: a JWKS document or an issuer's PEM
public key (a mounted Secret or ConfigMap). No network call, ever: the file is read at start and
again when it changes, so key rotation needs no restart. PyJWT loads on first use (it costs a
CLI command ~0.15 s to import).

Only asymmetric algorithms are accepted (a shared HMAC secret would let every verifier mint
tokens), and a token must carry ``exp``. A verified token is cached until it expires, so a client
that reuses its token pays for the signature check once; the cache empties when the keys change.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from granero.access.principal import Credentials, Principal
from granero.access.watched_file import WatchedFile
from granero.errors import Unauthenticated

_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CACHE_SIZE = 4096


class JwtConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["jwt"] = "jwt"
    keys_file: str
    """A JWKS document (JSON) or one PEM public key."""
    audience: str = Field(min_length=1)
    issuer: str | None = None
    algorithms: list[str] = ["RS256", "ES256"]
    principal_claim: str = "sub"
    roles_claims: list[str] = ["roles", "groups"]
    """Claims (lists of strings, or one string) whose values become the principal's roles."""
    leeway_seconds: float = Field(default=30.0, ge=0)
    reload_seconds: float = Field(default=5.0, ge=0)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in ASYMMETRIC]
        if refused or not value:
            raise ValueError(f"{refused or 'none given'}: use asymmetric algorithms of {list(ASYMMETRIC)}")
        return value


def parse_keys(data: bytes) -> dict[str | None, Any]:
    """Key id -> public key; a PEM key has the id None. ValueError when no key can be read."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return {None: load_pem_public_key(data)}
        except ValueError as error:
            raise ValueError(f"is not a PEM public key: {error}") from None
    try:
        keys = jwt.PyJWKSet.from_dict(json.loads(data)).keys
    except (ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as error:
        raise ValueError(f"is neither a JWKS document nor a PEM public key: {error}") from None
    return {key.key_id: key.key for key in keys}


class JwtAuthenticator:
    def __init__(self, config: JwtConfig) -> None:
        self.config = config
        self._keys = WatchedFile(config.keys_file, parse_keys, config.reload_seconds)
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_keys: object = None
        self._lock = threading.Lock()

    def authenticate(self, credentials: Credentials) -> Principal | None:
        token = credentials.bearer
        if not token or not _JWT_SHAPE.match(token):
            return None
        keys = self._keys.current()
        cached = self._cached(token, keys)
        if cached is not None:
            return cached
        claims = self._verify(token, keys)
        principal = self._principal(claims)
        self._remember(token, keys, principal, float(claims["exp"]))
        return principal

    def _verify(self, token: str, keys: dict[str | None, Any]) -> dict[str, Any]:
        import jwt

        for key in _candidates(token, keys):
            try:
                return jwt.decode(token, key, algorithms=self.config.algorithms,
                                  audience=self.config.audience, issuer=self.config.issuer,
                                  leeway=self.config.leeway_seconds,
                                  options={"require": ["exp", self.config.principal_claim]})
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as error:
                raise Unauthenticated(f"the JWT is refused: {_reason(error)}") from None
            except (jwt.PyJWTError, TypeError, ValueError):  # a key of another type than alg's
                continue
        raise Unauthenticated("the JWT is refused: its signature does not verify with the configured keys")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        name = claims.get(self.config.principal_claim)
        if not isinstance(name, str) or not name:
            raise Unauthenticated(f"the JWT is refused: claim {self.config.principal_claim!r} "
                                  "is not a non-empty string")
        roles = frozenset(role for claim in self.config.roles_claims
                          for role in _strings(claims.get(claim)))
        return Principal(name, roles, "jwt")

    def _cached(self, token: str, keys: object) -> Principal | None:
        with self._lock:
            if keys is not self._cache_keys:
                self._cache.clear()
                self._cache_keys = keys
            entry = self._cache.get(token)
        if entry is None or entry[1] + self.config.leeway_seconds <= time.time():
            return None
        return entry[0]

    def _remember(self, token: str, keys: object, principal: Principal, expires: float) -> None:
        with self._lock:
            if keys is self._cache_keys:
                self._cache[token] = (principal, expires)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)


def _candidates(token: str, keys: dict[str | None, Any]) -> list[Any]:
    """The key the header's ``kid`` names, else every key (a PEM file holds one)."""
    import jwt

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(f"the JWT is refused: {_reason(error)}") from None
    if kid is not None and kid in keys:
        return [keys[kid]]
    if kid is not None and None not in keys:
        raise Unauthenticated("the JWT is refused: it is signed with a key id the keys file lacks")
    return list(keys.values())


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _reason(error: Exception) -> str:
    """PyJWT's reason, which names claims and never echoes the token."""
    import jwt

    reasons = {jwt.ExpiredSignatureError: "it has expired",
               jwt.InvalidAudienceError: "it is not addressed to this audience",
               jwt.InvalidIssuerError: "its issuer is not the configured one",
               jwt.ImmatureSignatureError: "it is not valid yet",
               jwt.DecodeError: "it is malformed"}
    return next((text for kind, text in reasons.items() if isinstance(error, kind)), str(error))
