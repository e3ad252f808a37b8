"""A fault-injecting HTTP/1.1 reverse proxy for tests, on 127.0.0.1.

It sits between etcetera and moto or fake-gcs-server (``endpoint_url`` points at the
proxy) and forwards every request byte for byte, headers (``Host`` included, which
S3 signatures cover) untouched, bodies streamed. On a schedule of :class:`Rule`\\ s it
breaks things instead:

=================  ==================================================================
kind               what the client sees
=================  ==================================================================
``500``            ``500 InternalError`` (the request never reaches the server)
``503``            ``503 SlowDown`` (S3) / ``503`` (GCS)
``429``            ``429 TooManyRequests``
``409``            ``409 ConditionalRequestConflict`` (S3: a conditional write in flight)
``lost``           the server did the work, but the client gets a ``500``
``reset``          the response is cut mid-body by a TCP reset (before its head when
                   it has no body)
``truncate``       the response head promises the whole body; half of it comes, then
                   the connection closes cleanly
``stall``          half the response body (or nothing), then silence for ``stall`` seconds
``flip``           one byte of the response body is flipped
``reset-upload``   the connection is reset halfway through the request body
``flip-upload``    one byte of the request body is flipped before it is forwarded
=================  ==================================================================

With ``delay`` it also plays a network's round trip: every request waits that long
before it is forwarded, and so does every new connection (its TCP handshake). The
latency benchmark (``benchmarks/latency.py``) runs it that way, with no rules.

The proxy runs its own event loop in a daemon thread (:meth:`FaultProxy.start`,
:meth:`FaultProxy.stop`), opens one upstream connection per request, and never
waits for ever: every read has a deadline, a stall ends by itself, and ``stop``
cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

FaultKind = Literal[
    "500",
    "503",
    "429",
    "409",
    "lost",
    "reset",
    "truncate",
    "stall",
    "flip",
    "reset-upload",
    "flip-upload",
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "500",
    "503",
    "429",
    "lost",
    "reset",
    "truncate",
    "stall",
    "flip",
    "reset-upload",
    "flip-upload",
)

_IDLE = 30.0  # seconds a kept-alive client connection may sit idle
_IO = 30.0  # seconds any single read from a peer may take
_BLOCK = 64 * 1024
_MAX_HEAD = 64 * 1024
_BODILESS = frozenset({204, 304})

_S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    429: ("TooManyRequests", "Too many requests."),
    409: ("ConditionalRequestConflict", "A conflicting conditional operation is in progress."),
}


@dataclass
class Rule:
    """Break matching requests: the ``every``-th, ``2*every``-th, ... up to ``times``.

    Attributes:
        kind: the fault (see the module docstring).
        method: HTTP method to match, or ``None`` for any.
        path: regular expression searched in the request target (path and query).
        every: fire on every ``every``-th matching request (1: each of them).
        times: fire at most this many times (0: no limit).
        stall: seconds a ``stall`` lasts.
        matched: matching requests seen so far.
        fired: faults injected so far.
    """

    kind: FaultKind
    method: str | None = None
    path: str = ""
    every: int = 1
    times: int = 1
    stall: float = 3.0
    matched: int = 0
    fired: int = 0

    def applies(self, method: str, target: str) -> bool:
        """Whether a request matches (the counters are not touched)."""
        if self.method is not None and method != self.method:
            return False
        return re.search(self.path, target) is not None


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy saw it."""

    method: str
    target: str
    fault: FaultKind | None
    status: int | None  # the upstream status, when the request was forwarded


@dataclass
class _Head:
    first: str  # request or status line, without CRLF
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def encode(self) -> bytes:
        lines = [self.first, *(f"{k}: {v}" for k, v in self.headers), "", ""]
        return "\r\n".join(lines).encode("latin-1")


class _Closed(Exception):
    """The peer went away; drop the connection."""


async def _read_head(reader: asyncio.StreamReader, timeout: float) -> _Head | None:
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _Closed("peer closed inside a head") from None
        return None
    except (asyncio.LimitOverrunError, TimeoutError, ConnectionError) as exc:
        raise _Closed(str(exc)) from None
    lines = raw.decode("latin-1").split("\r\n")
    head = _Head(lines[0])
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            head.headers.append((key.strip(), value.strip()))
    return head


async def _read(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        data = await asyncio.wait_for(reader.read(n), _IO)
    except (TimeoutError, ConnectionError) as exc:
        raise _Closed(str(exc)) from None
    return data


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n"), _IO)
    except (
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        TimeoutError,
        ConnectionError,
    ) as exc:
        raise _Closed(str(exc)) from None


@dataclass
class _Framing:
    """How a body is delimited on the wire."""

    length: int | None  # Content-Length, when given
    chunked: bool
    to_eof: bool  # a response without length or chunking: the body ends with the connection

    @property
    def empty(self) -> bool:
        return not self.chunked and not self.to_eof and not self.length


def _framing(head: _Head, *, response: bool, bodiless: bool) -> _Framing:
    if bodiless:
        return _Framing(0, False, False)
    if (head.get("transfer-encoding") or "").lower().endswith("chunked"):
        return _Framing(None, True, False)
    length = head.get("content-length")
    if length is not None:
        return _Framing(int(length), False, False)
    return _Framing(0 if not response else None, False, response)


async def _body(reader: asyncio.StreamReader, framing: _Framing) -> AsyncIterator[bytes]:
    """The decoded body, block by block."""
    if framing.chunked:
        while True:
            line = await _read_line(reader)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await _read_line(reader)) != b"\r\n":  # trailers
                    pass
                return
            left = size
            while left:
                block = await _read(reader, min(left, _BLOCK))
                if not block:
                    raise _Closed("peer closed inside a chunk")
                left -= len(block)
                yield block
            await _read_line(reader)
    elif framing.to_eof:
        while block := await _read(reader, _BLOCK):
            yield block
    else:
        left = framing.length or 0
        while left:
            block = await _read(reader, min(left, _BLOCK))
            if not block:
                raise _Closed("peer closed inside a body")
            left -= len(block)
            yield block


def _frame(block: bytes, framing: _Framing) -> bytes:
    if framing.chunked:
        return b"%x\r\n%s\r\n" % (len(block), block) if block else b""
    return block


def _end(framing: _Framing) -> bytes:
    return b"0\r\n\r\n" if framing.chunked else b""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """A reverse proxy to ``upstream`` that injects the faults of its rules.

    Args:
        upstream: the server's root URL, e.g. ``http://127.0.0.1:5000``.
        flavour: ``"s3"`` (XML error bodies) or ``"gcs"`` (JSON error bodies).
        delay: seconds of round trip added to every request and every new connection.
    """

    def __init__(
        self, upstream: str, flavour: Literal["s3", "gcs"] = "s3", delay: float = 0.0
    ) -> None:
        parts = urlsplit(upstream)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self.flavour = flavour
        self.delay = delay
        self.rules: list[Rule] = []
        self.log: list[Exchange] = []
        self.port = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Where clients reach the proxy."""
        return f"http://127.0.0.1:{self.port}"

    # -- control (from the test's thread) -------------------------------------------------
    def start(self) -> FaultProxy:
        """Start serving in a daemon thread; return once the port is bound."""
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        """Stop serving, drop every connection and join the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(15)
            if self._thread.is_alive():
                raise RuntimeError("the fault proxy did not stop")

    def inject(self, *rules: Rule) -> None:
        """Replace the schedule."""
        with self._lock:
            self.rules = list(rules)

    def clear(self) -> None:
        """Forward everything from now on."""
        self.inject()

    def fired(self, kind: FaultKind | None = None) -> int:
        """Faults injected so far (of one kind, or all)."""
        return sum(1 for e in self.log if e.fault is not None and kind in (None, e.fault))

    def describe(self) -> str:
        """The exchanges so far, one a line, for assertion messages."""
        return "\n".join(
            f"{e.method} {e.target} -> {e.status} {e.fault or ''}".rstrip() for e in self.log
        )

    # -- the server (in the proxy's thread) -----------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_MAX_HEAD)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)  # the handshake's round trip
            await self._serve(reader, writer)
        except (_Closed, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def _pick(self, method: str, target: str) -> Rule | None:
        with self._lock:
            chosen = None
            for rule in self.rules:
                if not rule.applies(method, target):
                    continue
                rule.matched += 1
                exhausted = rule.times and rule.fired >= rule.times
                if chosen is None and not exhausted and rule.matched % rule.every == 0:
                    rule.fired += 1
                    chosen = rule
            return chosen

    def _error(self, status: int) -> bytes:
        if self.flavour == "s3":
            code, message = _S3_ERRORS.get(status, _S3_ERRORS[500])
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                "<RequestId>fault-proxy</RequestId></Error>"
            ).encode()
            kind = "application/xml"
        else:
            body = (
                f'{{"error":{{"code":{status},"message":"injected by the fault proxy",'
                f'"errors":[{{"message":"injected","reason":"backendError"}}]}}}}'
            ).encode()
            kind = "application/json"
        reason = {
            500: "Internal Server Error",
            503: "Service Unavailable",
            429: "Too Many Requests",
            409: "Conflict",
        }
        head = _Head(
            f"HTTP/1.1 {status} {reason.get(status, 'Error')}",
            [("Content-Type", kind), ("Content-Length", str(len(body)))],
        )
        return head.encode() + body

    async def _serve(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        while True:
            head = await _read_head(creader, _IDLE)
            if head is None:
                return
            method, target = head.first.split(" ")[:2]
            if self.delay:
                # One round trip, before anything is answered (a 100 Continue included).
                await asyncio.sleep(self.delay)
            rule = self._pick(method, target)
            req = _framing(head, response=False, bodiless=False)
            if (head.get("expect") or "").lower() == "100-continue":
                # Answer it here: a real server would, and the body must come to us first.
                cwriter.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            keep = await self._exchange(creader, cwriter, head, method, target, req, rule)
            if not keep or (head.get("connection") or "").lower() == "close":
                with contextlib.suppress(ConnectionError):
                    await cwriter.drain()
                return

    async def _exchange(
        self,
        creader: asyncio.StreamReader,
        cwriter: asyncio.StreamWriter,
        head: _Head,
        method: str,
        target: str,
        req: _Framing,
        rule: Rule | None,
    ) -> bool:
        """Handle one request; return whether the client connection stays usable."""
        kind = rule.kind if rule else None
        if kind in ("500", "503", "429", "409"):
            async for _ in _body(creader, req):
                pass
            self.log.append(Exchange(method, target, kind, None))
            cwriter.write(self._error(int(kind)))
            await cwriter.drain()
            return True

        ureader, uwriter = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port, limit=_MAX_HEAD), _IO
        )
        try:
            uwriter.write(head.encode())
            sent = 0
            half = (req.length or 0) // 2
            async for block in _body(creader, req):
                if kind == "reset-upload" and sent + len(block) > half:
                    # Half the body reached the server; then the line drops.
                    uwriter.write(_frame(block[: max(0, half - sent)], req))
                    self.log.append(Exchange(method, target, kind, None))
                    _reset(uwriter)
                    _reset(cwriter)
                    return False
                if kind == "flip-upload" and sent <= half < sent + len(block):
                    i = half - sent
                    block = block[:i] + bytes([block[i] ^ 0x01]) + block[i + 1 :]
                uwriter.write(_frame(block, req))
                sent += len(block)
                await uwriter.drain()
            uwriter.write(_end(req))
            await uwriter.drain()
            if kind == "reset-upload":  # no body to cut: drop the request whole
                self.log.append(Exchange(method, target, kind, None))
                _reset(cwriter)
                return False

            while True:  # skip interim answers (100 Continue): the client had ours
                resp = await _read_head(ureader, _IO)
                if resp is None:
                    raise _Closed("upstream closed without an answer")
                status = int(resp.first.split(" ")[1])
                if status >= 200 or status == 101:
                    break
            bodiless = method == "HEAD" or status < 200 or status in _BODILESS
            framing = _framing(resp, response=True, bodiless=bodiless)
            self.log.append(Exchange(method, target, kind, status))
            if kind == "lost":
                async for _ in _body(ureader, framing):
                    pass
                cwriter.write(self._error(500))
                await cwriter.drain()
                return True
            return await self._respond(cwriter, ureader, resp, framing, kind, rule)
        finally:
            uwriter.close()

    async def _respond(
        self,
        cwriter: asyncio.StreamWriter,
        ureader: asyncio.StreamReader,
        resp: _Head,
        framing: _Framing,
        kind: FaultKind | None,
        rule: Rule | None,
    ) -> bool:
        if kind in ("reset", "stall") and framing.empty:
            if kind == "stall":
                assert rule is not None
                await asyncio.sleep(rule.stall)
            _reset(cwriter)
            return False
        cwriter.write(resp.encode())
        # Where to break a body: half of it when its length is known, else half of its
        # first block.
        half = framing.length // 2 if framing.length is not None else None
        sent = 0
        async for block in _body(ureader, framing):
            if half is None:
                half = len(block) // 2
            if kind in ("reset", "truncate", "stall") and sent + len(block) > half:
                cwriter.write(_frame(block[: max(0, half - sent)], framing))
                await cwriter.drain()
                if kind == "stall":
                    assert rule is not None
                    await asyncio.sleep(rule.stall)
                if kind == "truncate":
                    cwriter.close()
                else:
                    _reset(cwriter)
                return False
            if kind == "flip" and sent <= half < sent + len(block):
                i = half - sent
                block = block[:i] + bytes([block[i] ^ 0x01]) + block[i + 1 :]
            cwriter.write(_frame(block, framing))
            sent += len(block)
            await cwriter.drain()
        cwriter.write(_end(framing))
        await cwriter.drain()
        return not framing.to_eof and (resp.get("connection") or "").lower() != "close"
