"""JSON over HTTP from a server that is not trusted: one whole-request deadline, a cap on the
answer's size, and no redirects.

The client of a Serve deployment (:mod:`core.remote`) goes through :func:`request_json`. A server
that trickles a byte every few seconds, sends an endless body or redirects to another host gets a
:class:`HttpJsonError` naming it, never a hang or a process that grows without bound. It uses the
standard library's ``http.client`` (TLS certificates verified by the default context), so ``core``
needs no HTTP package.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

MAX_ANSWER_BYTES = 16 * 2**20  # a /result answer of a 224 px model is about 0.4 MB
READ_CHUNK = 64 * 1024


class HttpJsonError(RuntimeError):
    """The server cannot be reached, is too slow, redirects, or answers something that is not
    bounded JSON; the message says which, and where (scheme, host and port only)."""


@dataclass(frozen=True)
class HttpStatusError(HttpJsonError):
    """The server answered with an HTTP error status."""

    status: int
    detail: str  # the server's own ``{"error": ...}`` message, else the status's reason
    origin: str

    def __str__(self) -> str:
        return f"the fracture server at {self.origin} answered HTTP {self.status}: {self.detail}"


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: where the server is, without the path and query (which may
    name a file or carry a credential)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def request_json(url: str, body: bytes | None, timeout_s: float, *, max_bytes: int = MAX_ANSWER_BYTES):
    """GET ``url`` (``body`` None) or POST ``body``, and parse the JSON answer, all within ``timeout_s``.

    Raises:
        HttpStatusError: for an HTTP error status (4xx, 5xx), with the server's message.
        HttpJsonError: if the server cannot be reached, takes longer than ``timeout_s`` in all,
            redirects (3xx: never followed), or answers more than ``max_bytes`` or not JSON.
    """
    parts = urllib.parse.urlsplit(url)
    where = origin(url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s,
                                                 context=ssl.create_default_context())
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    else:
        raise HttpJsonError(f"not an http(s) URL: {where}")
    # The socket timeout bounds each read; this timer bounds the whole exchange, so a server that
    # sends one byte just before each read's timeout still cannot hold the caller.
    expired = threading.Event()
    started, connected = time.monotonic(), False
    watchdog = None
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.connect()
        connected = True
        # Kept here: http.client drops connection.sock once a closing response has its headers.
        watchdog = threading.Timer(max(0.0, timeout_s - (time.monotonic() - started)), _close,
                                   args=(connection.sock, expired))
        watchdog.daemon = True
        watchdog.start()
        headers = {"Content-Type": "application/octet-stream", "Accept": "application/json"}
        connection.request("GET" if body is None else "POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = _read_bounded(response, max_bytes, where, deadline=started + timeout_s, expired=expired)
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set() or isinstance(error, TimeoutError):
            raise _too_slow(where, timeout_s, started) from None
        if not connected:
            raise HttpJsonError(f"cannot reach the fracture server at {where}: {getattr(error, 'strerror', None) or error}") from None
        raise HttpJsonError(f"the fracture server at {where} broke off its answer: {error}") from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()
    if expired.is_set():  # the watchdog's shutdown ends a blocked read as if the body had ended
        raise _too_slow(where, timeout_s, started)
    if 300 <= response.status < 400:
        raise HttpJsonError(f"the fracture server at {where} redirected (HTTP {response.status}); "
                            "redirects are not followed")
    if response.status >= 400:
        raise HttpStatusError(response.status, _error_detail(data, response.reason), where)
    try:
        return json.loads(data)
    except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
        raise HttpJsonError(f"the fracture server at {where} answered something that is not JSON") from None


def _too_slow(where: str, timeout_s: float, started: float) -> HttpJsonError:
    return HttpJsonError(f"the fracture server at {where} did not answer within {timeout_s:g} s "
                         f"({time.monotonic() - started:.1f} s)")


def _read_bounded(response: http.client.HTTPResponse, max_bytes: int, where: str, *, deadline: float,
                  expired: threading.Event) -> bytes:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HttpJsonError(f"the fracture server at {where} announced an answer of {int(declared):,} bytes; "
                            f"at most {max_bytes:,} are read")
    chunks, size = [], 0
    while chunk := response.read1(READ_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise HttpJsonError(f"the fracture server at {where} sent more than {max_bytes:,} bytes; "
                                "the answer was cut off and refused")
        chunks.append(chunk)
        if time.monotonic() > deadline:  # a trickle: each read is quick, the whole is not
            expired.set()
            break
    return b"".join(chunks)


def _error_detail(data: bytes, reason: str) -> str:
    try:
        return str(json.loads(data)["error"])[:500]
    except (ValueError, KeyError, TypeError):
        return str(reason)


def _close(sock, expired: threading.Event) -> None:
    expired.set()
    try:
        sock.shutdown(2)  # wakes a read blocked in another thread
    except OSError:
        pass
