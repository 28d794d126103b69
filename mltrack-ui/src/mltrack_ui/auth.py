"""Who may use the UI: nobody but this machine by default, a token holder otherwise.

Bound to a loopback address with no token configured, the UI answers only requests whose
``Host`` is a loopback name (so a web page on another origin cannot reach it by DNS
rebinding). The ``Host`` header is parsed strictly -- a hostname or an IP address (IPv6 in
brackets) and an optional numeric port, nothing else -- so ``localhost:5050@evil.com`` or
``[::1].evil.com`` is refused rather than read as localhost. With a token, every API route
(``/api/...`` and plugin routes under ``/-/``) needs it, as ``Authorization: Bearer <token>``
or as the session cookie that ``POST /api/auth/login`` sets; ``POST /api/auth/logout`` is
accepted only from the UI's own origin. The static pages hold no data and are served to anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mltrack.errors import ConfigError
from mltrack_ui.settings import TOKEN_HINT, token_problem

SESSION_COOKIE = "mltrack_ui_session"
PUBLIC_API_PATHS = frozenset({"/api/auth", "/api/auth/login", "/api/auth/logout"})
# RFC 3986's host (an IPv6 literal in brackets, or a DNS name / IPv4 address) and an optional
# port; ASCII only (re.ASCII), since a browser sends a punycoded name.
_HOST_HEADER = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?))"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve anywhere


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header (lowercase; IPv6 without brackets), or None unless the
    header is exactly ``host`` or ``host:port``."""
    match = _HOST_HEADER.fullmatch(header)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return None
    if match["ipv6"] is not None:
        try:
            return str(ipaddress.IPv6Address(match["ipv6"]))
        except ValueError:
            return None
    return match["name"].lower()


def same_origin(request: Request) -> bool:
    """True when a browser says the request comes from a page of this UI.

    ``Sec-Fetch-Site`` (every current browser sends it) is asked first, then ``Origin``
    against ``Host``. A request with neither is not from a browser page, so no other site
    can have caused it -- but nothing else needs the cookie routes either, so it is refused.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    host = request.headers.get("host", "").lower()
    if origin is None or not host:
        return False
    return urlsplit(origin).netloc.lower() == host


class AuthPolicy:
    """The rule in force for one app: open to loopback, or token-protected."""

    def __init__(self, host: str, token: str | None) -> None:
        if token is None and not is_loopback(host):
            raise ConfigError(
                f"refusing to serve the UI on {host!r} without authentication: anyone who can reach that "
                "address could read every run and model",
                hint="set MLTRACK_PLUGINS__UI__AUTH_TOKEN (or auth_token in [tool.mltrack.plugins.ui]), "
                "or bind 127.0.0.1",
            )
        problem = None if token is None else token_problem(token)
        if problem is not None:
            raise ConfigError(f"the UI's auth_token {problem}", hint=TOKEN_HINT)
        self.host = host
        self._token = token
        # The cookie carries a keyed digest, not the token itself, and dies with the process.
        self._session_key = secrets.token_bytes(32)

    @property
    def required(self) -> bool:
        return self._token is not None

    def session_value(self) -> str:
        assert self._token is not None
        return hmac.new(self._session_key, self._token.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token.encode())

    def is_authenticated(self, request: Request) -> bool:
        if not self.required:
            return True
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and self.token_matches(header[7:].strip()):
            return True
        cookie = request.cookies.get(SESSION_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self.session_value())

    def host_allowed(self, name: str) -> bool:
        """Whether a request addressed to host ``name`` (from ``host_name``) is answered."""
        if self.required:
            return True  # the token is the guard; any Host may carry it
        return is_loopback(name)


def is_protected(path: str) -> bool:
    return (path.startswith("/api/") and path not in PUBLIC_API_PATHS) or path.startswith("/-/")


def auth_middleware(
    policy: AuthPolicy,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        name = host_name(request.headers.get("host", ""))
        if name is None:
            return JSONResponse(
                {"error": "malformed Host header", "hint": "send Host as a hostname or IP address, and a port"},
                status_code=400,
            )
        if not policy.host_allowed(name):
            return JSONResponse(
                {
                    "error": "this UI answers only requests addressed to localhost",
                    "hint": "open it as http://localhost:<port>/, or give it an auth token to serve other names",
                },
                status_code=403,
            )
        if is_protected(request.url.path) and not policy.is_authenticated(request):
            return JSONResponse(
                {"error": "authentication required", "hint": "log in with the UI's token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return check
