"""Finding "3,000 connections that send half a header stay open forever" (issue 11, abuse is
free): on 2a4d142 ``accord serve`` (uvicorn's h11 protocol) waited for ever for the rest of a
request head, so a few thousand such sockets held the server. Now the head must arrive within
``serve.header_timeout_seconds`` and connections beyond ``serve.limit_concurrency`` answer 503;
real ``accord serve`` processes, real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from accord.adapters.sealing import new_key_text
from tests.api.test_serve import finish, free_port, start, wait_until_healthy

HEADER_TIMEOUT = 2.0
SLOW_CLIENTS = 50
HALF_A_HEAD = b"GET /healthz HTTP/1.1\r\nHost: accord\r\nX-Slow: "


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    started = []

    def run(**env: str) -> str:
        port = free_port()
        process = start(
            {
                "ACCORD_DATABASE_URL": database_url,
                "ACCORD_DATA_DIR": str(tmp_path),
                "ACCORD_SECRET_KEY": new_key_text(),
                "ACCORD_SERVE__HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
                **env,
            },
            "serve",
            "--port",
            str(port),
            "--no-worker",
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, process)
        return url

    yield run
    for process in started:
        process.terminate()
        finish(process)


def connect(url: str) -> socket.socket:
    """A raw TCP connection to the server at ``url``."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def slow_sockets(url: str, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = connect(url)
        sock.sendall(HALF_A_HEAD)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) before ``deadline``."""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


def test_half_a_header_is_dropped_and_others_are_served(serve: Callable[..., str]) -> None:
    url = serve()
    opened = time.monotonic()
    sockets = slow_sockets(url, SLOW_CLIENTS)
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200  # served meanwhile
    deadline = opened + HEADER_TIMEOUT + 30  # generous: a busy machine
    closed = [closed_by_server(sock, deadline) for sock in sockets]
    assert all(closed), f"{closed.count(False)} of {SLOW_CLIENTS} slow sockets still open"
    assert time.monotonic() - opened >= HEADER_TIMEOUT * 0.9  # not dropped before their time
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200


def read_response(stream: BinaryIO) -> bytes:
    """One whole response (its head and its ``Content-Length`` body); returns the status line."""
    status = stream.readline()
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = stream.read(length)
    assert len(body) == length, "the connection ended in the middle of a response"
    return status


def test_a_kept_alive_connection_has_the_same_deadline_for_its_next_head(
    serve: Callable[..., str],
) -> None:
    url = serve()
    sock = connect(url)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: accord\r\n\r\n")
    with sock.makefile("rb") as stream:
        assert read_response(stream).startswith(b"HTTP/1.1 200")
    answered = time.monotonic()
    sock.sendall(HALF_A_HEAD)  # the next request's head, never finished
    assert closed_by_server(sock, answered + HEADER_TIMEOUT + 30)
    assert time.monotonic() - answered >= HEADER_TIMEOUT * 0.9


def test_pipelined_requests_are_all_answered(serve: Callable[..., str]) -> None:
    url = serve()
    with connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: accord\r\n\r\n" * 3)
        with sock.makefile("rb") as stream:
            statuses = [read_response(stream) for _ in range(3)]
    assert all(status.startswith(b"HTTP/1.1 200") for status in statuses)


def test_connections_beyond_the_cap_are_refused_until_the_slow_ones_go(
    serve: Callable[..., str],
) -> None:
    url = serve(ACCORD_SERVE__LIMIT_CONCURRENCY="10")
    sockets = slow_sockets(url, 12)
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 503
    deadline = time.monotonic() + HEADER_TIMEOUT + 30
    assert all([closed_by_server(sock, deadline) for sock in sockets])
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
