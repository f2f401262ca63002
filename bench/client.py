"""A bare HTTP/1.1 keep-alive client for the benchmark's API latencies.

Whatever the client spends is counted as the API's time. Measured on the default page (120 KB),
client CPU a request: `http.client` ~210 us (its header parsing goes through the `email`
package), this ~65 us (mostly the socket copying the answer in); httpx more than either.
"""

from __future__ import annotations

import socket


class Client:
    """POSTs to one path of one server over one connection, opened again if the server closed
    it (uvicorn closes keep-alive connections idle for 5 s)."""

    def __init__(self, base: str, path: str, headers: dict[str, str]) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self._address = (host, int(port))
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{fields}"
        self._buffer = bytearray(8 << 20)
        self._sock: socket.socket | None = None

    def post(self, body: bytes) -> memoryview:
        """The answer's body, valid until the next call. Raises unless the status is 200."""
        for attempt in range(2):
            if self._sock is None:
                self._sock = socket.create_connection(self._address)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                return self._exchange(self._sock, body)
            except ConnectionError:
                self._sock.close()
                self._sock = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _exchange(self, sock: socket.socket, body: bytes) -> memoryview:
        sock.sendall(f"{self._head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        view = memoryview(self._buffer)
        got = 0
        while (end := self._buffer.find(b"\r\n\r\n", 0, got)) < 0:
            got += _receive(sock, view[got:])
        status, *fields = self._buffer[:end].decode("latin-1").split("\r\n")
        lengths = [
            int(value)
            for name, _, value in (field.partition(":") for field in fields)
            if name.lower() == "content-length"
        ]
        if len(lengths) != 1:
            raise AssertionError(f"no single Content-Length in the answer: {status}")
        total = end + 4 + lengths[0]
        if total > len(self._buffer):
            raise AssertionError(f"an answer of {lengths[0]} bytes does not fit the buffer")
        while got < total:
            got += _receive(sock, view[got:total])
        answer = view[end + 4 : total]
        if status.split(" ")[1] != "200":
            raise AssertionError(f"{status}: {bytes(answer)!r}")
        return answer


def _receive(sock: socket.socket, into: memoryview) -> int:
    count = sock.recv_into(into)
    if count == 0:
        raise ConnectionResetError("the server closed the connection")
    return count
