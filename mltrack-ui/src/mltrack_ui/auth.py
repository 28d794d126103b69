"""Who may use the UI: nobody but this machine by default, a token holder otherwise.

Bound to a loopback address with no token configured, the UI answers only requests whose
``Host`` is a loopback name (so a web page on another origin cannot reach it by DNS
rebinding). With a token, every API route (``/api/...`` and plugin routes under ``/-/``)
needs it, as ``Authorization: Bearer <token>`` or as the session cookie that
``POST /api/auth/login`` sets. The static pages hold no data and are served to anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mltrack.errors import ConfigError

SESSION_COOKIE = "mltrack_ui_session"
PUBLIC_API_PATHS = frozenset({"/api/auth", "/api/auth/login", "/api/auth/logout"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve anywhere


def _host_name(header: str) -> str:
    if header.startswith("["):  # [::1]:5050
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


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

    def host_allowed(self, request: Request) -> bool:
        if self.required:
            return True  # the token is the guard; any Host may carry it
        return _host_name(request.headers.get("host", "")).lower() in LOOPBACK_NAMES


def is_protected(path: str) -> bool:
    return (path.startswith("/api/") and path not in PUBLIC_API_PATHS) or path.startswith("/-/")


def auth_middleware(
    policy: AuthPolicy,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not policy.host_allowed(request):
            return JSONResponse({"error": "this UI answers only requests addressed to localhost"}, status_code=403)
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
