"""URL redaction: the one function that makes a URL safe to print or log.

Every message, log line and status output that shows a store URL goes through ``redact_url``.
It must hide the secret of any URL a user may write, including URLs that do not parse (an
unencoded '/', '?' or '#' in a password moves the rest of it into the path, query or fragment),
so it does not trust a URL parser. The rule, applied to the text after ``scheme://``:

- the value of a ``password`` query parameter runs to the next ``&name=`` of a parameter
  redis-py knows (or to the end), and becomes ``***``;
- the user info runs to the *last* '@'; a user name before its first ':' stays, the rest
  becomes ``***`` (a lone ``secret@`` is taken as a password, as some clients do).

It errs on the side of hiding: a host is hidden too when an '@' follows it.
"""

from __future__ import annotations

import re

MASK = "***"

_KNOWN_PARAMETERS = (
    "db|username|password|socket_timeout|socket_connect_timeout|socket_keepalive|"
    "retry_on_timeout|max_connections|health_check_interval|ssl_check_hostname|ssl_cert_reqs|"
    "ssl_ca_certs|ssl_certfile|ssl_keyfile|ssl_min_version|ssl_ciphers|client_name|protocol|"
    "timeout|read_from_replicas|require_full_coverage|decode_responses|encoding"
)
_QUERY_PASSWORD = re.compile(
    rf"([?&](?:password|pass|pwd)=).*?(?=&(?:{_KNOWN_PARAMETERS})=|$)", re.IGNORECASE | re.DOTALL
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?(.*)$", re.DOTALL)


def redact_url(url: str) -> str:
    """``url`` with its password (in the user info or the query) replaced by ``***``."""
    scheme, rest = _SCHEME.match(url).groups()  # type: ignore[union-attr] (always matches)
    rest = _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", rest)
    user_info, at, host_part = rest.rpartition("@")
    if not at:
        return (scheme or "") + rest
    user, colon, _ = user_info.partition(":")
    kept_user = f"{user}:" if colon else ""
    return f"{scheme or ''}{kept_user}{MASK}@{host_part}"
