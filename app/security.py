"""The HTTP perimeter, one ASGI middleware in front of every route and file:
which Host names are served (DNS rebinding), which browsers may write (forged
cross-site requests), who may read /metrics and the API docs, and the security
headers every response carries. docs/security.md has the threat model."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from app.settings import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
ANY_INTERFACE = ("", "0.0.0.0", "::", "[::]")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Where writes are checked: our REST API and the Agent Server API's routes.
API_PATHS = ("/api", "/threads", "/assistants")
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
DEFAULT_PORTS = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}
# A Host header is only echoed into the CSP when it is a plain host[:port].
PLAIN_HOST = re.compile(r"[a-z0-9.\-]+(:\d+)?|\[[0-9a-f:.]+\](:\d+)?")

POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # data: for the favicon; remote images are links (js/markdown.js)
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
)
# FastAPI's /docs and /redoc pages load Swagger UI and ReDoc from a CDN and start
# them with an inline script; they are served to loopback clients by default.
DOCS_POLICY = (
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
    "font-src https://fonts.gstatic.com",
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
    "worker-src blob:",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
)

REFUSALS = {
    "invalid_host": "this server does not answer to that Host name "
    "(THREADLINE_TRUSTED_HOSTS lists the names it answers to)",
    "not_found": "Not Found",
    "cross_site": "cross-site requests may not change anything here",
    "unsupported_media_type": "send the body as application/json",
}


def host_name(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` -> `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def served_names(settings: Settings) -> tuple[frozenset[str], tuple[str, ...]]:
    """The Host names this server answers to, and `*.domain` suffixes from trusted_hosts."""
    names = set(LOOPBACK_NAMES)
    configured = settings.host.strip().lower()
    if configured not in ANY_INTERFACE:
        names.add(f"[{configured}]" if ":" in configured else configured)
    suffixes = []
    for trusted in (t.strip().lower() for t in settings.trusted_hosts):
        if trusted == "*" or trusted.startswith("*."):
            suffixes.append(trusted[1:])  # "*" alone trusts every name: "" ends them all
        else:
            names.add(host_name(trusted))
    return frozenset(names), tuple(suffixes)


def content_security_policy(path: str, host: str | None) -> str:
    if path in DOCS_PATHS:
        return "; ".join(DOCS_POLICY)
    host = (host or "").lower()
    sockets = f" ws://{host} wss://{host}" if PLAIN_HOST.fullmatch(host) else ""
    return "; ".join((*POLICY, f"connect-src 'self'{sockets}"))


def is_loopback(scope: Scope) -> bool:
    """Whether the client (as uvicorn's trusted proxy headers name it) is this machine."""
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def normal_origin(origin: str) -> str:
    """scheme://host[:port], lower case, the default port left out."""
    parts = urlsplit(origin.strip().lower())
    netloc = parts.netloc.removesuffix(DEFAULT_PORTS.get(parts.scheme, "\0"))
    return f"{parts.scheme}://{netloc}"


class Perimeter:
    """Checks every request at the door; adds the security headers on the way out."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.names, self.suffixes = served_names(settings)
        self.allowed_origins = frozenset(normal_origin(o) for o in settings.allowed_origins)
        self.gates = dict.fromkeys(DOCS_PATHS, settings.api_docs)
        self.gates["/metrics"] = settings.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        trusted = self.host_trusted(host)
        if scope["type"] == "websocket":
            if trusted:
                await self.app(scope, receive, send)
            else:  # refused before the handshake: the client sees 403
                await send({"type": "websocket.close", "code": 1008})
            return
        send = self.with_headers(send, scope["path"], host if trusted else None)
        refusal = self.refusal(scope, headers) if trusted else ("invalid_host", 400)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        code, status = refusal
        reply = JSONResponse(error_body(code, REFUSALS[code]), status_code=status)
        await reply(scope, receive, send)

    def host_trusted(self, host: str) -> bool:
        name = host_name(host)
        if not name:
            return False
        return name in self.names or any(name.endswith(s) for s in self.suffixes)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[str, int] | None:
        """Why this request is refused (error code, status), or None."""
        path: str = scope["path"]
        gate = self.gates.get(path)
        if gate == "off" or (gate == "loopback" and not is_loopback(scope)):
            return "not_found", 404
        if scope["method"] not in WRITES or not is_api(path):
            return None
        if self.cross_site(scope, headers):
            return "cross_site", 403
        if has_body(headers) and not is_json(headers.get("content-type")):
            return "unsupported_media_type", 415
        return None

    def cross_site(self, scope: Scope, headers: Headers) -> bool:
        """What the browser says about where the request comes from. Clients
        that are no browser send neither header, and pass."""
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site") in ("cross-site", "same-site")
        origin = normal_origin(origin)
        if origin in self.allowed_origins:
            return False
        schemes = {scope["scheme"], "https"} if self.settings.https else {scope["scheme"]}
        host = headers.get("host", "")
        return origin not in {normal_origin(f"{scheme}://{host}") for scheme in schemes}

    def with_headers(self, send: Send, path: str, host: str | None) -> Send:
        extra = {
            "Content-Security-Policy": content_security_policy(path, host),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if self.settings.https:
            extra["Strict-Transport-Security"] = "max-age=31536000"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        return send_with_headers


def is_api(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in API_PATHS)


def has_body(headers: Headers) -> bool:
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or (length.isdigit() and int(length) > 0)


def is_json(content_type: str | None) -> bool:
    """No Content-Type at all is taken as JSON (what FastAPI does); browsers always send one."""
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return (
        media == "application/json"
        or re.fullmatch(r"application/[\w.+-]+\+json", media) is not None
    )
