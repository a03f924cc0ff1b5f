"""Limits on what an authority's answer may cost: a deadline for the whole request (not per
read) and a largest body, checked on a real socket where a slow or endless server matters."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from hub.connector import JsonApi, RetryPolicy, TransientConnectorError, build_client
from hub.connector.auth import ClientCredentials
from hub.connector.errors import UnusableAnswerError
from hub.connector.limits import MAX_BODY_BYTES

Answer = tuple[bytes, list[bytes], float]
"""What the server sends: the head, then the pieces of the body, one every so many seconds."""


class Server:
    """HTTP/1.1 on 127.0.0.1 that answers each request as ``answer(path)`` says, slowly if
    asked; it stops sending when the client hangs up."""

    def __init__(self, answer: Callable[[str], Answer]) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while True:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                path = head.split(b" ")[1].decode()
                status, pieces, every = self.answer(path)
                try:
                    conn.sendall(status)
                    for piece in pieces:
                        if self.stop.wait(every):
                            return
                        conn.sendall(piece)
                        self.sent += len(piece)
                except OSError:
                    return  # the client hung up: what a limit does

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str], Answer]], Server]]:
    servers: list[Server] = []

    def start(answer: Callable[[str], Answer]) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def head(length: int | None, content_type: bytes = b"application/json") -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n" + framing + b"\r\n\r\n"


def chunked(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


def jsonapi(url: str, timeout: float, **kwargs: object) -> JsonApi:
    client = build_client("kommun", url, timeout_seconds=timeout, **kwargs)  # type: ignore[arg-type]
    return JsonApi("kommun", client, RetryPolicy(attempts=1))


def test_an_answer_trickling_in_is_cut_off_at_the_deadline(serve: Callable[..., Server]) -> None:
    """Before: each byte came within the read timeout, so a 40-byte answer sent one byte
    every 0.2 s took 8 s with a timeout of 0.4 s (the review saw 39 s with 2 s)."""
    body = b'{"a": "' + b"x" * 31 + b'"}'
    server = serve(lambda path: (head(len(body)), [bytes([b]) for b in body], 0.2))
    with pytest.raises(TransientConnectorError) as err:
        jsonapi(server.url, 0.4).json("GET", "/slow", params={"personnummer": "189001019802"})
    assert server.sent < len(body)  # given up on before the answer was all there
    assert str(err.value) == (
        f"kommun: {server.url} did not finish answering GET /slow within 1 s (3 × timeout_seconds)"
    )


def test_a_quick_answer_is_not_affected(serve: Callable[..., Server]) -> None:
    body = b'{"ok": true}'
    server = serve(lambda path: (head(len(body)), [body], 0.0))
    api = jsonapi(server.url, 0.4)
    assert [api.json("GET", "/x") for _ in range(3)] == [{"ok": True}] * 3


def test_a_declared_length_above_the_limit_is_refused_before_reading(
    serve: Callable[..., Server],
) -> None:
    """Before: the client read on (the review saw a 1.5 GB answer take 3 GB of memory)."""
    server = serve(lambda path: (head(MAX_BODY_BYTES + 1), [b"[" * 1000] * 10, 1.0))
    with pytest.raises(UnusableAnswerError, match="GET /big is larger than 32 MiB"):
        jsonapi(server.url, 5).json("GET", "/big")
    assert server.sent == 0  # refused on the header, before the first piece came


def test_an_answer_without_a_length_is_counted_and_cut_off(serve: Callable[..., Server]) -> None:
    piece = chunked(b" " * 65536)
    server = serve(lambda path: (head(None), [piece] * 200, 0.0))  # 12.5 MiB, no length
    api = JsonApi(
        "kommun",
        build_client("kommun", server.url, timeout_seconds=5),
        RetryPolicy(attempts=1),
        max_body_bytes=1024 * 1024,
    )
    with pytest.raises(UnusableAnswerError, match="larger than 1 MiB"):
        api.json("GET", "/endless")


def test_a_compressed_answer_is_measured_as_it_unpacks() -> None:
    bomb = gzip.compress(b" " * (MAX_BODY_BYTES + 1))  # some 32 KiB on the wire
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    transport = httpx.MockTransport(
        lambda req: httpx.Response(200, headers=headers, stream=httpx.ByteStream(bomb))
    )
    client = build_client("kommun", "https://k.example", timeout_seconds=5, transport=transport)
    with pytest.raises(UnusableAnswerError, match="larger than 32 MiB"):
        JsonApi("kommun", client, RetryPolicy(attempts=1)).json("GET", "/x")


def test_a_slow_token_answer_counts_against_the_requests_deadline(
    serve: Callable[..., Server],
) -> None:
    token = b'{"access_token": "t0", "expires_in": 600}'

    def answer(path: str) -> Answer:
        if path == "/oauth2/token":
            return head(len(token)), [bytes([b]) for b in token], 0.2
        return head(2), [b"{}"], 0.0

    server = serve(answer)
    auth = ClientCredentials("af", "/oauth2/token", "hub", SecretStr("s"))
    with pytest.raises(TransientConnectorError, match="POST /oauth2/token within 1 s"):
        jsonapi(server.url, 0.4, auth=auth).json("GET", "/x")
    assert server.sent < len(token)  # the token's answer was given up on part-way
