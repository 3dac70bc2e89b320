"""Remote systems that misbehave on cue, on real loopback sockets, for the HTTP client tests.

- `ScriptedSystem`: an HTTP server (served by `running_sandbox`) that answers every
  request with the `Answer` it is given, or holds it until released, and keeps what it
  received;
- `hanging_up`: a raw TCP server that reads a request and then closes the connection,
  or resets it, without a word;
- `refused_port` and `unresponsive_port`: nothing listening, and a listener whose
  queue is full, so a connect is refused or never completes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response

from o2c_sandbox.serve import running_sandbox

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    """What the scripted system says to every request."""

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


def problem(status: int, code: str, detail: str, **headers: str) -> Answer:
    """An RFC 9457 problem as a system implementing the contract writes it."""
    body = {
        "type": f"urn:example:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
    }
    return Answer(status, json.dumps(body), headers, "application/problem+json")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes


class ScriptedSystem:
    """Answers every request with `answer`, or, when `holding`, keeps it waiting until
    the end of the test; `received` lists what came in."""

    def __init__(self) -> None:
        self.answer = Answer(200, "{}")
        self.holding = False
        self.received: list[Received] = []
        self._released = asyncio.Event()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def anything(request: Request) -> Response:
            self.received.append(
                Received(
                    method=request.method,
                    path=request.url.path,
                    headers={name.lower(): value for name, value in request.headers.items()},
                    body=await request.body(),
                )
            )
            if self.holding:
                await self._released.wait()
            answer = self.answer
            return Response(
                answer.body,
                status_code=answer.status,
                headers=dict(answer.headers),
                media_type=answer.media_type,
            )

        return app

    def release(self) -> None:
        self._released.set()


@asynccontextmanager
async def scripted_system() -> AsyncIterator[tuple[ScriptedSystem, str]]:
    """A `ScriptedSystem` on a free loopback port, and its base URL."""
    system = ScriptedSystem()
    async with running_sandbox({"scripted": system.app()}) as urls:
        try:
            yield system, urls["scripted"]
        finally:
            system.release()  # a held request must end for the server to stop


@dataclass(frozen=True)
class HangingUp:
    url: str
    requests: list[bytes]
    """The head of every request read before hanging up."""


@asynccontextmanager
async def hanging_up(*, reset: bool) -> AsyncIterator[HangingUp]:
    """A server that reads each request whole, then closes the connection (`reset`: with
    a TCP reset) and never answers."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = _content_length(head)
        if length:
            await reader.readexactly(length)
        requests.append(head)
        if reset:
            # Linger on with a zero timeout: close() sends RST instead of FIN.
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield HangingUp(url=f"http://{LOOPBACK}:{port}", requests=requests)


def _content_length(head: bytes) -> int:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value)
    return 0


def refused_port() -> int:
    """A port nobody listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def unresponsive_port() -> Iterator[int]:
    """A port whose listener never accepts and whose queue is already full: the kernel
    drops further connection attempts, so a client's connect times out."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        with socket.create_connection((LOOPBACK, port), timeout=1):  # fills the queue
            yield port
