"""HTTP hygiene around the service's app: what uvicorn leaves to the application.

    GuardedH11 (uvicorn's h11 protocol, subclassed)
        a request whose headers or body do not arrive within READ_TIMEOUT seconds of its first
        byte (or a connection silent that long) gets 408 and is closed: uvicorn's own
        `timeout_keep_alive` only covers the idle time *between* requests, so a client sending
        one byte a second held a connection forever; malformed HTTP (bad Content-Length, NUL in
        a header, missing or duplicate Host, bad chunk size) gets a JSON 400, not uvicorn's
        plain-text one. The request line and headers over MAX_HEADER_BYTES get a JSON 431
        however they arrive: h11 bounds only a header block still incomplete
        (`h11_max_incomplete_event_size`), so a 70 KB one arriving in one read was accepted.
    HostGuard        a Host outside the allowed names gets 400 (default for `semsearch serve`:
                     the bound host and localhost; DNS-rebinding and Host-echo defence)
    HeadAsGet        HEAD is answered wherever GET is (headers only)
    framing_error    both Content-Length and Transfer-Encoding: 400 at once (a smuggling
                     vector; h11 waited for a body that never came)

The app itself has no trailing-slash redirects (a 307 whose Location echoed any Host header)
and no /docs page (Swagger UI loads its script from a public CDN); see serve.create_app.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

READ_TIMEOUT = 10.0  # seconds a request's headers and body may take to arrive
MAX_HEADER_BYTES = 16 << 10  # the request line and headers (h11's incomplete-event limit)
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def _json(status: int, reason: str, message: str, code: str) -> bytes:
    """A complete HTTP/1.1 response with a JSON error body, closing the connection (with the
    service's security headers: this answer never passes its middleware)."""
    body = json.dumps({"error": message, "code": code}).encode("utf-8")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nx-content-type-options: nosniff\r\n"
            f"referrer-policy: no-referrer\r\nconnection: close\r\n\r\n").encode("ascii") + body


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a read timeout per request and JSON protocol errors."""

    read_timeout = READ_TIMEOUT

    def connection_made(self, transport: Any) -> None:
        self._read_timer: Any = None
        self._head_too_large = False
        super().connection_made(transport)
        parse = self.conn.next_event

        def next_event() -> Any:  # uvicorn reads every event through this
            event = parse()
            if isinstance(event, h11.Request) and _head_size(event) > MAX_HEADER_BYTES:
                self._head_too_large = True
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
            return event

        self.conn.next_event = next_event  # type: ignore[method-assign]
        self._arm()  # a connection that never sends anything is closed too

    def _reading(self) -> bool:
        """A request is on its way in: its request line, headers or body are incomplete."""
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def _arm(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def data_received(self, data: bytes) -> None:
        if self._reading():
            self._arm()
        super().data_received(data)
        if not self._reading():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle until the next request: uvicorn's keep-alive timeout applies

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing() or not self._reading():
            return
        cycle = self.cycle
        started = cycle is not None and not cycle.response_complete and cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app sees http.disconnect and its answer is dropped
            cycle.message_event.set()
        if not started:
            self.transport.write(_json(408, "Request Timeout", f"the request did not arrive "
                                       f"within {self.read_timeout:g} s; connection closed",
                                       "request_timeout"))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        if self._head_too_large:
            self.transport.write(_json(431, "Request Header Fields Too Large", "the request "
                                       "line and headers are over "
                                       f"{MAX_HEADER_BYTES >> 10} KiB; send less",
                                       "header_too_large"))
        else:
            self.transport.write(_json(400, "Bad Request", "invalid HTTP request (malformed "
                                       "request line, header, Host, Content-Length or chunk)",
                                       "bad_http"))
        self.transport.close()


def _head_size(event: h11.Request) -> int:
    """The bytes of a request line and headers as sent (give or take their whitespace)."""
    return (len(event.method) + len(event.target) + 12
            + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items()) + 2)


def protocol(read_timeout: float = READ_TIMEOUT) -> type[GuardedH11]:
    """The protocol class to give uvicorn (`http=`), with this read timeout."""
    return type("GuardedH11", (GuardedH11,), {"read_timeout": read_timeout})


def default_hosts(bound: str) -> list[str]:
    """The Host names a service bound to `bound` answers by default: that address and the
    loopback names; for a wildcard bind, this machine's names too."""
    names = [bound, *LOCAL_NAMES]
    if bound in WILDCARD_HOSTS:
        names += [socket.gethostname(), socket.getfqdn()]
    return sorted({n.lower() for n in names if n and n not in WILDCARD_HOSTS})


def _host_name(value: str) -> str:
    """The name part of a Host header: `[::1]:8000` → `::1`, `Example.org:80` → `example.org`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def _answer(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"error": message, "code": code}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """ASGI middleware: a request whose Host is not one of `allowed` gets 400 (`*` allows
    any). Also refuses a request with both Content-Length and Transfer-Encoding."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] | None = None) -> None:
        self.app = app
        self.allowed = None if allowed is None else {h.lower() for h in allowed}
        if self.allowed is not None and "*" in self.allowed:
            self.allowed = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = [name for name, _ in scope.get("headers") or []]
        if b"content-length" in names and b"transfer-encoding" in names:
            await _answer(send, 400, "the request has both Content-Length and "
                                     "Transfer-Encoding; send one", "bad_http")
            return
        if self.allowed is not None:
            host = next((v.decode("latin-1") for k, v in scope.get("headers") or []
                         if k == b"host"), "")
            if _host_name(host) not in self.allowed:
                await _answer(send, 400, f"host {host[:100]!r} is not served here (allowed: "
                                         f"{', '.join(sorted(self.allowed))}); see "
                                         "`semsearch serve --allow-host`", "host_not_allowed")
                return
        await self.app(scope, receive, send)


class HeadAsGet:
    """ASGI middleware: HEAD runs as GET with the body dropped, so every GET route (and any a
    later change adds) answers HEAD with the same status and headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
