"""Static API tokens, stored hashed in a file (a mounted Kubernetes Secret).

The file holds no token, only each token's SHA-256 (tokens are 256-bit random strings, so a fast
hash is enough: there is nothing to guess from). It is read again when it changes, so adding or
revoking a token (deleting its entry) takes effect without a restart::

    tokens:
      - name: fraud-model          # the principal's name
        sha256: 3f1c...            # granero token new fraud-model --role fraud prints both
        roles: [fraud]
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from granero.access.principal import Credentials, Principal
from granero.access.watched_file import WatchedFile

TOKEN_PREFIX = "grn_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TokensConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["tokens"] = "tokens"
    file: str
    """The YAML file of hashed tokens."""
    reload_seconds: float = Field(default=1.0, ge=0)
    """How often, at most, the file is checked for a change."""


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    sha256: str
    roles: list[str] = []

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.match(value.lower()):
            raise ValueError("must be a SHA-256 digest: 64 hex digits (never the token itself)")
        return value.lower()


def new_token() -> str:
    """A fresh 256-bit token; only its ``token_digest`` is ever stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens_file(data: bytes) -> dict[str, Principal]:
    """Digest -> principal; ValueError naming the entry and field that is wrong."""
    try:
        raw = yaml.safe_load(data) or {}
    except yaml.YAMLError:
        raise ValueError("is not valid YAML") from None
    entries = raw.get("tokens") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ValueError("expected a mapping with a 'tokens' list")
    principals: dict[str, Principal] = {}
    for index, entry in enumerate(entries):
        token = _entry(index, entry)
        if token.sha256 in principals:
            raise ValueError(f"tokens[{index}] ({token.name}): the same digest appears twice")
        principals[token.sha256] = Principal(token.name, frozenset(token.roles), "token")
    return principals


def _entry(index: int, entry: object) -> TokenEntry:
    try:
        return TokenEntry.model_validate(entry)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in error.errors())
        raise ValueError(f"tokens[{index}]: {problems}") from None


class TokenAuthenticator:
    """Recognises bearer tokens whose digest the file lists; others are not its kind (None)."""

    def __init__(self, config: TokensConfig) -> None:
        self._tokens = WatchedFile(config.file, parse_tokens_file, config.reload_seconds)

    def authenticate(self, credentials: Credentials) -> Principal | None:
        if not credentials.bearer:
            return None
        return self._tokens.current().get(token_digest(credentials.bearer))
