"""A webhook receiver on loopback (a real HTTP server in a thread) that records what it
gets and answers with the status (and body) the test sets; told to, it holds each request
(no answer) until released, or drips its answer a byte at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    status: int = 200
    received: list[Received] = field(default_factory=list)
    hold: bool = False
    """Keep each request waiting, unanswered, until ``release`` is set."""
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    body: bytes | None = None
    """The answer's body (None: ``ok``, or ``nope …`` for a failure status)."""
    answer: Callable[[bytes], bytes] | None = None
    """Makes the answer's body of the request's (before ``body``)."""
    drip: float | None = None
    """Answer the status at once, then a byte of body every ``drip`` seconds, without end
    (until released)."""

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(headers, body))
                receiver.arrived.set()
                if receiver.hold:
                    receiver.release.wait(timeout=120)
                try:
                    self.send_response(receiver.status)
                    self.end_headers()
                    if receiver.drip is not None:
                        while not receiver.release.wait(receiver.drip):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                    elif receiver.answer is not None:
                        self.wfile.write(receiver.answer(body))
                    elif receiver.body is not None:
                        self.wfile.write(receiver.body)
                    else:
                        self.wfile.write(b"ok" if receiver.status < 300 else b"nope " * 200)
                except OSError:  # the sender went away while held
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/kithost"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
