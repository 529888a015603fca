"""The browser's own protections: a strict Content-Security-Policy on every HTML page, and
`nosniff` and `no-referrer` on every HTTP response.

The policy allows script, style, images and connections only from the server itself, no inline
script or style and no `eval`, and no framing. `connect-src` names the socket's `ws:` and `wss:`
origins explicitly (from the request's Host) besides `'self'`, because not every browser counts
a same-host `ws:` as `'self'`. A Host that is not a plain name[:port] (an IPv6 literal, say)
is left out, so nothing a client sends goes into the policy unchecked. A small ASGI middleware
rather than a library: the headers are few, but `connect-src` is built per request.
"""

import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What a CSP host-source can name: a DNS name or IPv4 address, and an optional port.
_HOST = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::[0-9]{1,5})?")

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def content_security_policy(host: str | None) -> str:
    """The policy of an HTML page served to a request with this Host header."""
    connect = ["'self'"]
    if host is not None and _HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    directives = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        "connect-src": " ".join(connect),
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeaders:
    """Adds the headers to every HTTP response; the policy only to `text/html` ones."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    host = Headers(scope=scope).get("host")
                    headers["Content-Security-Policy"] = content_security_policy(host)
            await send(message)

        await self.app(scope, receive, send_with_headers)
