"""HTTP/1.1 for the registry client, on the standard library's :mod:`http.client`.

:class:`HTTPPool` keeps persistent connections, one idle list per origin (scheme, host,
port and TLS settings), so the many small requests of a pull (ping, token, manifests,
blobs) reuse a few TCP/TLS connections (RFC 9112 section 9.3, persistence). It does
exactly what :class:`ocilearn.distribution.client.RegistryClient` needs and no more:

* no redirects are followed (the client follows them itself, deciding where the
  ``Authorization`` header may go), no cookies are kept, no proxies are read from the
  environment, no compression is asked for (``Accept-Encoding: identity``, so a
  manifest's bytes are the bytes whose digest is checked);
* ``timeout=(connect, read)`` in seconds: the first bounds the TCP connect and the TLS
  handshake, the second each socket read after it;
* every failure to connect or to receive the response headers is a
  :class:`ConnectionFailed` (:class:`Timeout`, :class:`TLSError` for the two cases the
  client treats apart); two different ``Content-Length`` values are an
  :class:`InvalidHeader` (RFC 9112 section 6.3: a message with them is invalid);
* :class:`Response` reads the body in pieces (:meth:`Response.read1`) and turns a body cut
  short — fewer bytes than ``Content-Length`` said, or a chunked body without its last
  chunk — into :class:`http.client.IncompleteRead`, never a silent short read.

Why not ``requests``: importing it (with urllib3, charset_normalizer, http.cookiejar …)
costs 60–85 ms per process, a third of a whole ``ocilearn copy`` from a loopback registry
(BENCHMARKS.md, "Pull"); :mod:`http.client` costs ≈ 11 ms and is what urllib3 is built on.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from typing import Any
from urllib.parse import quote, urlsplit

# characters left as they are in a request target (as requests' requote_uri does):
# reserved and unreserved characters and '%' (an escape already made)
_SAFE = "!#$%&'()*+,/:;=?@[]~"
MAX_IDLE = 8  # idle connections kept per origin
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
BLOCKSIZE = 1 << 18  # bytes sent per write of a streamed request body


class ConnectionFailed(OSError):
    """No connection, or it broke before the whole response head arrived."""


class Timeout(ConnectionFailed):
    """The connect, the TLS handshake or a read of the response head timed out."""


class TLSError(ConnectionFailed):
    """The TLS handshake failed (a bad certificate, a plain-HTTP server, a bad CA file)."""


class InvalidHeader(ValueError):
    """A response header that makes the message invalid (two different Content-Length)."""


class _HTTPResponse(http.client.HTTPResponse):
    """http.client's response, skipping every interim 1xx response (RFC 9110 section
    15.2: a client must be able to parse and ignore one); http.client itself skips only
    ``100 Continue`` and would return a ``103 Early Hints`` as the final answer, leaving
    the real response unread on a kept-alive connection."""

    def _read_status(self):  # type: ignore[no-untyped-def]
        while True:
            version, status, reason = super()._read_status()
            if 100 < status < 200 and status != 101:
                http.client._read_headers(self.fp)  # type: ignore[attr-defined]  # its header lines, capped as the final ones are
                continue
            return version, status, reason


class Headers(dict):
    """Response headers by lower-cased name; a header sent several times has its values
    joined with ``", "`` (RFC 9110 section 5.3). ``get`` and ``[]`` ignore case."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for name, value in items:
            key = name.lower()
            dict.__setitem__(self, key, f"{dict.__getitem__(self, key)}, {value}" if key in self else value)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


def parse_links(value: str) -> dict[str, dict[str, str]]:
    """The ``Link`` header (RFC 8288 section 3) as ``{rel or url: {"url": …, "rel": …, …}}``."""
    out: dict[str, dict[str, str]] = {}
    for part in _split_links(value or ""):
        url, _, params = part.partition(";")
        link = {"url": url.strip().strip("<> '\"")}
        for p in params.split(";"):
            k, sep, v = p.partition("=")
            if sep:
                link[k.strip().lower()] = v.strip().strip("'\"")
        out[link.get("rel") or link["url"]] = link
    return out


def _split_links(value: str) -> list[str]:
    """Split a Link header at the commas between links (not those inside ``<…>`` or quotes)."""
    parts, buf, angle, quoted = [], [], False, False
    for ch in value:
        if ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch == '"' and not angle:
            quoted = not quoted
        elif ch == "," and not angle and not quoted:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


class Response:
    """A response whose body is read in pieces; :meth:`close` gives the connection back
    to the pool when the body was read to its end, else closes it.

    Attributes:
        status_code: the HTTP status (int).
        headers: :class:`Headers`.
        content: the body, when the caller read it whole and stored it here (else ``b""``).
        sock: the socket the body is read from (to shut down at a deadline).
    """

    def __init__(self, pool: "HTTPPool", key: tuple, conn: http.client.HTTPConnection,
                 resp: http.client.HTTPResponse) -> None:
        self._pool, self._key, self._conn, self._r = pool, key, conn, resp
        self.status_code: int = resp.status
        self.reason: str = resp.reason
        self.headers = Headers(resp.msg.items())
        self.content = b""
        self.sock = conn.sock
        self._got = 0  # body bytes read

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The parsed ``Link`` header (:func:`parse_links`)."""
        return parse_links(self.headers.get("Link", ""))

    def read1(self, n: int = 65536) -> bytes:
        """Up to ``n`` body bytes, with at most one socket read; ``b""`` at the end.

        Raises:
            http.client.IncompleteRead: the connection closed before the end of the body
                (``partial``: bytes read in all, ``expected``: bytes missing, ``None`` for
                a chunked body); OSError (a read timeout, a reset).
        """
        r = self._r
        if r is None or n <= 0:
            return b""
        try:
            data = r.read1(n)
        except http.client.IncompleteRead:
            if r.chunked:
                raise http.client.IncompleteRead(self._got, None) from None
            raise
        if data:
            self._got += len(data)
            return data
        if not r.chunked and r.length:  # EOF before Content-Length bytes
            raise http.client.IncompleteRead(self._got, r.length)
        return b""

    read = read1

    def close(self) -> None:
        r, conn = self._r, self._conn
        if r is None or conn is None:
            return
        self._r = self._conn = None
        done = r.isclosed() or (not r.chunked and r.length == 0)
        # an interim 1xx answer other than 100 (103 Early Hints; http.client skips only
        # 100 Continue) has its final response still unread on the socket: the connection
        # is closed, else the next request would read that response as its own
        reusable = done and self.status_code >= 200 and not r.will_close and conn.sock is not None
        r.close()
        if reusable:
            self._pool._release(self._key, conn)
        else:
            conn.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def _alive(conn: http.client.HTTPConnection) -> bool:
    """Is an idle kept-alive connection still usable? (A readable idle socket means the
    server closed it or sent something unasked: either way it is not.)"""
    sock = conn.sock
    if sock is None:
        return False
    try:
        p = select.poll()
        p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return not p.poll(0)
    except (OSError, ValueError):
        return False


class HTTPPool:
    """Persistent HTTP/1.1 connections for one client, shared by its threads.

    Args:
        user_agent: the ``User-Agent`` header sent with every request.
    """

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._contexts: dict[Any, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def _context(self, verify: bool | str) -> ssl.SSLContext:
        with self._lock:
            ctx = self._contexts.get(verify)
        if ctx is None:
            if verify is False:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif isinstance(verify, str):
                ctx = ssl.create_default_context(cafile=verify)
            else:
                ctx = ssl.create_default_context()
            ctx.set_alpn_protocols(["http/1.1"])
            with self._lock:
                self._contexts[verify] = ctx
        return ctx

    def _take(self, key: tuple) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None or _alive(conn):
                return conn
            conn.close()

    def _release(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, data: Any = None,
                timeout: tuple[float, float] = (10.0, 60.0), verify: bool | str = True,
                deadline: Any = None) -> Response:
        """Send one request and read the response head.

        Args:
            method, url: ``GET``, ``http(s)://host[:port]/path?query``.
            headers: request headers (a ``Host`` header is added by http.client).
            data: ``None``, bytes, str (sent as UTF-8) or a file-like object with
                ``read(n)`` (then give ``Content-Length`` in ``headers``).
            timeout: (connect, read) seconds.
            verify: TLS: ``True`` (the system's CAs), a PEM file of CAs, or ``False``.
            deadline: an object with ``add(conn, sock)``, told of every socket used, and
                set on the connection as ``_ocilearn_deadline`` (see the client's deadlines).

        Returns:
            the :class:`Response`, its body not yet read.

        Raises:
            ConnectionFailed (Timeout, TLSError): no connection or no complete response
                head; InvalidHeader: two different Content-Length values; ValueError: an
                unusable URL.
        """
        p = urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise ValueError(f"unsupported URL {url.split('?', 1)[0]!r}")
        port = p.port or (443 if p.scheme == "https" else 80)  # ValueError when out of range
        target = quote(p.path or "/", safe=_SAFE) + (f"?{quote(p.query, safe=_SAFE)}" if p.query else "")
        h = {"User-Agent": self.user_agent, "Accept": "*/*", **(headers or {})}
        body = data.encode() if isinstance(data, str) else data
        # a request on a kept-alive connection the server closed meanwhile is sent again
        # only when that cannot do anything twice: an idempotent method (RFC 9110 section
        # 9.2.2) with a body we still hold (RFC 9112 section 9.3.1: a user agent MUST NOT
        # automatically retry a non-idempotent request; POST starts an upload session or
        # pushes a whole blob, PATCH appends a chunk)
        resendable = method.upper() in _IDEMPOTENT and (body is None or isinstance(body, (bytes, bytearray)))
        key = (p.scheme, p.hostname, port, verify)
        for attempt in (0, 1):
            conn = self._take(key)
            reused = conn is not None
            if conn is None:
                try:
                    if p.scheme == "https":
                        conn = http.client.HTTPSConnection(p.hostname, port, timeout=timeout[0], context=self._context(verify),
                                                           blocksize=BLOCKSIZE)
                    else:
                        conn = http.client.HTTPConnection(p.hostname, port, timeout=timeout[0], blocksize=BLOCKSIZE)
                except ssl.SSLError as e:  # a CA file that is no PEM
                    raise TLSError(f"{e}") from None
                conn.response_class = _HTTPResponse
            conn._ocilearn_deadline = deadline  # type: ignore[attr-defined]
            try:
                if conn.sock is None:
                    conn.connect()
                if deadline is not None:
                    deadline.add(conn, conn.sock)
                conn.sock.settimeout(timeout[1])
                conn.request(method, target, body=body, headers=h)
                resp = conn.getresponse()
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as e:
                # http.client.RemoteDisconnected is a ConnectionResetError: a kept-alive
                # connection the server closed meanwhile is retried once on a new one
                # when the request is resendable (above)
                conn.close()
                if reused and attempt == 0 and resendable:
                    continue
                raise ConnectionFailed(f"{type(e).__name__}: {e}") from None
            except ssl.SSLError as e:
                conn.close()
                raise TLSError(f"{e}") from None
            except TimeoutError as e:
                conn.close()
                raise Timeout(f"timed out ({e})" if str(e) else "timed out") from None
            except http.client.InvalidURL as e:
                conn.close()
                raise ValueError(str(e)) from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise ConnectionFailed(f"{type(e).__name__}: {e}") from None
            except BaseException:
                conn.close()
                raise
            lengths = {v.strip() for v in resp.msg.get_all("Content-Length") or ()}
            if len(lengths) > 1:
                resp.close()
                conn.close()
                raise InvalidHeader(f"Content-Length contained multiple unmatching values ({', '.join(sorted(lengths))})")
            return Response(self, key, conn, resp)
        raise AssertionError("unreachable")


__all__ = ["HTTPPool", "Response", "Headers", "ConnectionFailed", "Timeout", "TLSError", "InvalidHeader", "parse_links"]
