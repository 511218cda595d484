"""CORS for browser apps: any origin may read discovery and `/metadata`; the rest only from
`FHIR_CORS_ORIGINS`. Wraps the whole ASGI application, since FHIR requests bypass FastAPI.

Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here; other responses
get `Access-Control-Allow-Origin` (and the headers a FHIR client reads exposed) when allowed.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders, State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_PATHS = ("/.well-known/", "/metadata", "/auth/jwks")
ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = ("Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, If-Modified-Since, "
                 "Prefer, X-Request-Id")
EXPOSE_HEADERS = "Location, Content-Location, ETag, Last-Modified, WWW-Authenticate, X-Request-Id"


class Cors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    @property
    def state(self) -> State:
        return self.app.state

    def _allowed(self, path: str, origin: str) -> str | None:
        if path.startswith(PUBLIC_PATHS):
            return "*"
        return origin if origin in self.origins or "*" in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = self._allowed(scope["path"], origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(allowed, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                response_headers = MutableHeaders(scope=message)
                response_headers["Access-Control-Allow-Origin"] = allowed
                response_headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                if allowed != "*":
                    response_headers.append("Vary", "Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, allowed: str | None, send: Send) -> None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if allowed:
            headers += [(b"access-control-allow-origin", allowed.encode()),
                        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                        (b"access-control-max-age", b"600")]
        await send({"type": "http.response.start", "status": 204 if allowed else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
