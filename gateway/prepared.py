"""Answers written as one pre-serialised HTTP/1.1 message.

Once a remembered verification's body is known (:mod:`sealgate.gateway.dispatch`), what is left
per request is HTTP framing, and aiohttp's response does that for any answer: a header
multidict, a status line and header serialiser, a writer state machine with its awaits.
Under load that was about a fifth of the worker's time (profiled, docs/capacity.md).
:class:`AnswerWriter` makes the same bytes aiohttp would send (the same headers in the
same order: the fixed ones, ``X-Request-Id``, ``Content-Length``, ``Date``, ``Server``)
from a head built once, and :class:`PreparedAnswer` writes them with one
``transport.write``.

Only for what it can say exactly: a 200 with a body to an HTTP/1.1 request that keeps
its connection (:meth:`AnswerWriter.fits`). Anything else (HTTP/1.0, ``Connection:
close``) takes aiohttp's own response. Header values are checked when the head is built
and request ids when each answer is: nothing reaches the wire that could split it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

__all__ = ["AnswerWriter", "PreparedAnswer"]

# Header names are tokens; values here are visible ASCII and spaces (RFC 9110 §5.5),
# which rules out CR and LF, and with them a forged header or a split response.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VALUE = re.compile(r"[\x20-\x7e]*")


class PreparedAnswer(web.StreamResponse):
    """A 200 whose whole message, head and body, was serialised beforehand.

    aiohttp's server calls :meth:`prepare` and then :meth:`write_eof`; the first writes
    the message, the second has nothing left to do. ``headers`` holds the same headers
    for whoever reads them in the process (the access log, metrics, tests).
    """

    def __init__(self, message: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(status=200, headers=headers)
        self._message = message

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:
            return None
        transport = request.transport
        if transport is None or transport.is_closing():
            # as aiohttp's writer says it: the server counts the request as abandoned
            raise ConnectionResetError("cannot write to a closing transport")
        # The server reads these after the answer: it keeps the connection (fits()
        # made sure the request asked for that), and nothing more is to be written.
        self._keep_alive = True
        self._eof_sent = True
        transport.write(self._message)
        # flow control as aiohttp's writer has it: wait only while the socket is full
        await request.writer.drain()
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        if data:
            raise RuntimeError("a prepared answer is complete; nothing can be added")


class AnswerWriter:
    """Makes :class:`PreparedAnswer` objects with ``headers`` fixed, for one worker.

    The ``Date`` header is formatted once a second, as aiohttp does.
    """

    def __init__(
        self, headers: Mapping[str, str], *, clock: Callable[[], float] = time.time
    ) -> None:
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
                raise ValueError(f"not a header that can be written as is: {name!r}")
        self._headers = dict(headers)
        self._head = (
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(f"{name}: {value}\r\n".encode("ascii") for name, value in headers.items())
            + b"X-Request-Id: "
        )
        self._server = SERVER_SOFTWARE.encode("ascii")
        self._clock = clock
        self._second = -1
        self._ending = b""  # "\r\nDate: …\r\nServer: …\r\n\r\n" of the current second

    @staticmethod
    def fits(request: web.BaseRequest) -> bool:
        """Whether a prepared answer says to ``request`` exactly what aiohttp would."""
        return request.version == HttpVersion11 and request.keep_alive

    def respond(self, request: web.BaseRequest, body: bytes, request_id: str) -> web.StreamResponse:
        """The answer to ``request``: prepared when it :meth:`fits`, else aiohttp's own
        response with the same headers."""
        if self.fits(request):
            return self.answer(body, request_id)
        return web.Response(body=body, headers=self._headers_with(request_id))

    def _headers_with(self, request_id: str) -> dict[str, str]:
        return {**self._headers, "X-Request-Id": request_id}

    def answer(self, body: bytes, request_id: str) -> PreparedAnswer:
        if not _TOKEN.fullmatch(request_id):
            raise ValueError("a request id must be a token")
        second = int(self._clock())
        if second != self._second:
            date = formatdate(second, usegmt=True)
            self._second = second
            self._ending = b"".join(
                (b"\r\nDate: ", date.encode("ascii"), b"\r\nServer: ", self._server, b"\r\n\r\n")
            )
        message = b"".join(
            (
                self._head,
                request_id.encode("ascii"),
                b"\r\nContent-Length: ",
                str(len(body)).encode("ascii"),
                self._ending,
                body,
            )
        )
        return PreparedAnswer(message, self._headers_with(request_id))
