"""A minimal keep-alive HTTP/1.1 client for benchmarks.

httpx spends about three times the server's CPU per request; on a 2-core machine that starves the
server being measured. This client does only what the benchmarks need (Content-Length bodies,
persistent connections, one request per connection at a time) so that the figures measure the
server. Functional tests keep using httpx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def check(self) -> Reply:
        if self.status >= 400:
            raise RuntimeError(f"HTTP {self.status}: {self.body[:300]!r}")
        return self


class RawHttpClient:
    """A pool of persistent connections to one host."""

    def __init__(self, base_url: str, connections: int, headers: dict[str, str] | None = None) -> None:
        """`headers` (e.g. Authorization) go with every request."""
        self.headers = headers or {}
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.size = connections
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.opened = 0

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Reply:
        if self.pool.empty() and self.opened < self.size:
            self.opened += 1
            await self.pool.put(await asyncio.open_connection(self.host, self.port))
        reader, writer = await self.pool.get()
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await reader.readline()
        reply_headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            reply_headers[name.strip().lower()] = value.strip()
        length = int(reply_headers.get("content-length", "0"))
        content = await reader.readexactly(length) if length else b""
        await self.pool.put((reader, writer))
        return Reply(int(status_line.split()[1]), reply_headers, content)

    async def close(self) -> None:
        while not self.pool.empty():
            _, writer = self.pool.get_nowait()
            writer.close()
