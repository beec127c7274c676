"""Listening sockets for the service's own servers (SMTP, web)."""

from __future__ import annotations

import socket


def tcp_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (``port`` 0: any free one), not
    yet listening.  Created with ``IPPROTO_TCP`` explicitly: asyncio sets
    ``TCP_NODELAY`` only on accepted sockets whose protocol says TCP, and
    without it a reply written in pieces (aiosmtpd's multi-line EHLO answer,
    an HTTP response) waits ~40 ms for Nagle and the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
