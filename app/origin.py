"""Cross-Site WebSocket Hijacking defence: which browser pages may open a socket.

Origins are compared as origins, (scheme, host, port) with default ports normalised, so
`https://x:443` is `https://x`. `CHAT_ALLOWED_ORIGINS`, when set, is the whole list. Unset,
only the server's own pages may connect; on a loopback address "own" means a loopback host
name with the server's port, whatever the `Host` header says (a DNS rebinding page sends its
own name in `Host`, and would otherwise pass).
"""

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.datastructures import Headers

Origin = tuple[str, str, int]  # scheme, host, port

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def origin_allowed(
    headers: Headers,
    allowed: frozenset[str] | None,
    *,
    server: tuple[str, int | None] | None = None,
    scheme: str = "ws",
) -> bool:
    """No Origin (a non-browser client): allowed. Otherwise the configured list, or by default
    only pages served by this server itself (see the module docstring). `server` is the local
    address the connection came in on, `scheme` the socket's (ws or wss)."""
    header = headers.get("origin")
    if header is None:
        return True
    origin = parse_origin(header)
    if allowed is not None:
        return "*" in allowed or (origin is not None and origin in _parsed(allowed))
    if origin is None:
        return False  # "null" and other opaque origins
    if server is not None and server[1] is not None and _is_loopback(server[0]):
        own_scheme = _PAGE_SCHEME.get(scheme, "http")
        return origin[1] in LOOPBACK_NAMES and origin[::2] == (own_scheme, server[1])
    return _same_host(origin, headers.get("host"))


def parse_origin(text: str) -> Origin | None:
    """An origin's (scheme, host, port), or None if `text` is not a tuple origin."""
    parts = urlsplit(text.strip().lower())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return (_PAGE_SCHEME[parts.scheme], parts.hostname, port)


@lru_cache(maxsize=8)
def _parsed(allowed: frozenset[str]) -> frozenset[Origin]:
    return frozenset(o for o in map(parse_origin, allowed) if o is not None)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a Unix socket or a name


def _same_host(origin: Origin, host: str | None) -> bool:
    """The Origin's host and port equal the Host header's (its port defaulting by the Origin's
    scheme: a proxy in front may terminate TLS)."""
    if not host:
        return False
    own = parse_origin(f"{origin[0]}://{host.strip()}")
    return own is not None and own[1:] == origin[1:]
