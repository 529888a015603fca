"""Cross-Site WebSocket Hijacking defence: which browser pages may open a socket."""

from urllib.parse import urlsplit

from starlette.datastructures import Headers

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def origin_allowed(headers: Headers, allowed: frozenset[str] | None) -> bool:
    """No Origin (a non-browser client): allowed. Otherwise the configured list, or by default
    only pages served by this server itself (the Origin's host and port equal the Host header)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if allowed is not None:
        return "*" in allowed or origin in allowed
    host = headers.get("host")
    if not host:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return False  # "null" and other opaque origins
    try:
        origin_port = parts.port or _DEFAULT_PORTS[parts.scheme]
        own = urlsplit(f"{parts.scheme}://{host.strip().lower()}")
        own_port = own.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return False
    return (parts.hostname, origin_port) == (own.hostname, own_port)
