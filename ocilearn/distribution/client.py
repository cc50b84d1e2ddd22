"""A registry client over HTTP (OCI distribution-spec), on the standard library's
:mod:`http.client` (through :mod:`ocilearn.distribution.httpconn`); the
``docker://`` copy transport built on it is :mod:`ocilearn.distribution.registry`.

What it does, with the spec section for each:

* **ping** ``GET /v2/`` (distribution-spec "Determining support"); a 401 answer carries
  ``WWW-Authenticate`` challenges (RFC 7235 §4.1), parsed by :func:`ocilearn.distribution.auth.parse_challenges`;
  credentials come from :func:`ocilearn.distribution.auth.load_credentials`.
* **auth**: HTTP Basic (RFC 7617) or the Docker token flow (distribution's
  ``docs/spec/auth/token.md``): ``GET realm?service=…&scope=…`` (anonymous, or with Basic
  credentials), or the OAuth2 form ``POST`` (``docs/spec/auth/oauth.md``) with a refresh
  token or when the server refuses the GET. Tokens are reused until they expire and
  fetched again on a 401.
* **manifests** ``GET/HEAD /v2/<name>/manifests/<reference>`` with an ``Accept`` header
  listing every OCI and Docker manifest and index type; documents over 4 MiB are refused
  before parsing; the digest is computed over the exact bytes received and checked
  against the requested digest, or against ``Docker-Content-Digest`` when present (it is
  optional: distribution-spec "Pulling manifests" says SHOULD).
* **blobs** ``GET /v2/<name>/blobs/<digest>``, streamed through the layout's verifying
  writer; redirects are followed by hand and ``Authorization`` is only ever sent to the
  registry's own origin (a redirect to object storage must not receive the registry's
  token; CVE-2018-1000007 is the same leak in curl); a broken download resumes with ``Range``; connection
  errors, 429 (``Retry-After``) and 5xx are retried with exponential backoff.
* **push**: ``HEAD`` blob, ``POST`` upload (monolithic ``PUT`` or chunked ``PATCH``),
  cross-repository mount (``?mount=&from=``), ``PUT`` manifest with its media type
  (distribution-spec "Pushing blobs", "Pushing manifests").

Limits against hostile or broken servers (all configurable, units given):

* bodies read whole are streamed with a cap and the connection is then closed: ping
  64 KiB (:data:`MAX_PING_BODY`), error bodies 64 KiB (:data:`MAX_ERROR_BODY`), token
  answers 1 MiB (:data:`MAX_TOKEN_BODY`), manifests and tag pages 4 MiB;
* a document exchange (ping, token, manifest GET/HEAD/PUT, a tag page) must finish —
  headers and body — within ``RegistryClient(deadline=…)`` seconds
  (:data:`DOCUMENT_DEADLINE`, 120 s), or it fails with ``RegistryError``;
* a blob download must receive at least ``blob_stall_bytes`` (16 KiB) per
  ``blob_stall_seconds`` (30 s) of reading, else it is resumed, then abandoned;
* every transport failure (a ``Content-Length`` lie, a read timeout, a malformed chunk or
  header) is an :class:`~ocilearn.core.errors.RegistryError`, never a raw http.client or
  socket exception.

Every HTTP exchange is recorded on :attr:`RegistryClient.exchanges` (method, URL, status,
key headers with secrets redacted, bytes, seconds) and as an ``explain`` step.
Secrets (passwords, tokens, signed URL parameters) never appear in the log, in reprs or in
exception messages.

Reference command: ``skopeo copy docker://… oci:…`` / ``curl -v https://HOST/v2/…``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import json
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from ..core import explain
from ..core.errors import AuthError, DigestMismatch, InvalidDocument, OcilearnError, RegistryError, SizeMismatch
from ..image import mediatypes as mt
from ..image.digest import CHUNK, Digest
from ..image.model import Descriptor, Index, Manifest, parse_document
from ..image.reference import DOCKER_HUB, Reference
from .auth import REDACTED, Challenge, Credentials, load_credentials, parse_challenges
from .httpconn import ConnectionFailed, HTTPPool, Response, Timeout, TLSError

MAX_MANIFEST = 4 * 1024 * 1024  # bytes: distribution-spec recommends registries accept at least 4 MiB
# Caps on bodies that are read whole (bytes). A hostile or broken server may send an
# endless body; nothing more than these is ever read, and the connection is then closed.
MAX_PING_BODY = 64 * 1024  # the body of GET /v2/ (normally "{}")
MAX_ERROR_BODY = 64 * 1024  # an error body (distribution-spec "Error Codes" JSON)
MAX_TOKEN_BODY = 1024 * 1024  # a token server's JSON answer
MAX_TAGS_BODY = MAX_MANIFEST  # one page of GET /v2/<name>/tags/list
MAX_TAG_PAGES = 10_000  # pages of tags/list followed at most
MAX_TAGS = 1_000_000  # tags returned at most by RegistryClient.tags
# Time limits (seconds). The (connect, read) timeout bounds each socket operation only; a
# server trickling one byte per second never trips it. So:
DOCUMENT_DEADLINE = 120.0  # seconds: a whole document exchange (ping, token, manifest, tags …)
BLOB_STALL_SECONDS = 30.0  # seconds: the window of the blob throughput rule …
BLOB_STALL_BYTES = 16 * 1024  # bytes: … a blob download receiving fewer than this in the window is broken
USER_AGENT = "ocilearn/0.2 (python http.client)"
# query parameters of pre-signed URLs and token requests that are secrets
_SECRET_PARAMS = {
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "sig", "token",
    "access_token", "refresh_token", "password", "x-goog-signature", "x-goog-credential", "se", "sp", "sv",
}
_KEY_HEADERS = (
    "Accept", "Authorization", "Content-Type", "Content-Length", "Content-Range", "Range", "Location",
    "Docker-Content-Digest", "WWW-Authenticate", "Retry-After", "Docker-Upload-UUID",
)
_REDIRECTS = {301, 302, 303, 307, 308}
_RETRY_STATUS = {429, 500, 502, 503, 504}


# ------------------------------------------------------------------ exchange log


def redact_url(url: str) -> str:
    """``url`` with secret query values (signatures, tokens, passwords) and any
    ``user:password@`` replaced by ``<redacted>``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    q = parse_qsl(parts.query, keep_blank_values=True)
    if q:
        query = "&".join(
            f"{quote(k, safe='')}={REDACTED if k.lower() in _SECRET_PARAMS else quote(v, safe=':/,')}" for k, v in q
        )
    else:
        query = parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: Any) -> dict[str, str]:
    """The key headers of a request or response, secrets replaced: ``Authorization`` keeps
    only its scheme, ``Location`` and ``WWW-Authenticate`` pass through
    :func:`redact_url`-style cleaning."""
    out: dict[str, str] = {}
    for name in _KEY_HEADERS:
        v = headers.get(name) if headers is not None else None
        if v is None:
            continue
        if name == "Authorization":
            v = f"{v.split(' ', 1)[0]} {REDACTED}"
        elif name == "Location":
            v = redact_url(v)
        out[name] = str(v)
    if headers is not None and headers.get("Set-Cookie") is not None:
        out["Set-Cookie"] = REDACTED
    return out


@dataclass
class Exchange:
    """One HTTP request and its answer, as recorded by :class:`RegistryClient`.

    Attributes:
        method: ``GET``, ``HEAD``, ``POST``, ``PUT``, ``PATCH``.
        url: the URL, secrets redacted.
        status: the HTTP status code (0 when the connection failed).
        request_headers, response_headers: key headers, secrets redacted.
        bytes: body bytes received (for blobs: as streamed so far).
        seconds: time to the response headers.
        note: what this exchange was for (``ping``, ``token``, ``manifest``, ``blob``…) or
            the error met (``connection reset``).
    """

    method: str
    url: str
    status: int
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    seconds: float = 0.0
    note: str = ""

    def row(self) -> dict[str, Any]:
        """A flat dict for a table (pandas ``DataFrame(log.rows())`` or HTML)."""
        return {"method": self.method, "url": self.url, "status": self.status, "bytes": self.bytes,
                "seconds": round(self.seconds, 4), "note": self.note,
                "request headers": "; ".join(f"{k}: {v}" for k, v in self.request_headers.items()),
                "response headers": "; ".join(f"{k}: {v}" for k, v in self.response_headers.items())}


class ExchangeLog(list):
    """A list of :class:`Exchange` that shows as a table in Jupyter and as text elsewhere."""

    def rows(self) -> list[dict[str, Any]]:
        return [e.row() for e in list(self)]

    def __str__(self) -> str:
        return "\n".join(f"{e.method:5s} {e.status:3d} {e.bytes:>10d} B  {e.url}  [{e.note}]" for e in list(self))

    def _repr_html_(self) -> str:
        import html

        from ocilearn.core.htmltable import table

        return table(
            ["#", "method", "URL", "status", "bytes", "note", "request headers", "response headers (secrets redacted)"],
            ([str(i), html.escape(e.method), f"<code>{html.escape(e.url)}</code>", str(e.status), str(e.bytes),
              html.escape(e.note),
              "<small>" + "<br>".join(html.escape(f"{k}: {v}") for k, v in e.request_headers.items()) + "</small>",
              "<small>" + "<br>".join(html.escape(f"{k}: {v}") for k, v in e.response_headers.items()) + "</small>"]
             for i, e in enumerate(list(self), 1)),
            cls="ocilearn-exchanges",
        )


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index fetched from a registry, verified.

    Attributes:
        raw: the exact bytes received (their digest is :attr:`digest`).
        media_type: the document's media type (its ``mediaType`` field, else Content-Type).
        digest: sha256 (or the requested algorithm) of ``raw``.
        document: the parsed :class:`~ocilearn.image.model.Manifest` or :class:`~ocilearn.image.model.Index`.
    """

    raw: bytes = field(repr=False)
    media_type: str
    digest: Digest
    document: Manifest | Index

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    port = p.port or (443 if p.scheme == "https" else 80 if p.scheme == "http" else None)
    return p.scheme, (p.hostname or "").lower(), port


def _is_loopback_host(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ------------------------------------------------------------------ deadlines and capped bodies

_ACTIVE = threading.local()  # .deadline: the _Deadline of the exchange running in this thread


class _Deadline:
    """A wall-clock limit on one document exchange: request headers, response headers and
    body, a token fetched on the way, redirects. When it passes, a timer thread shuts down
    (``shutdown(2)``, which wakes a blocked ``recv``) every socket the exchange used, so
    the reading thread fails at once instead of waiting for a trickling server.

    Sockets are registered by :meth:`HTTPPool.request <ocilearn.distribution.httpconn.HTTPPool.request>`
    when a request is sent on them while this deadline is active in the thread, or
    explicitly with :meth:`watch`.
    A connection that has gone back to the pool and was taken by another request is
    marked with that request's deadline, so it is never shut down by this one.
    """

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds, self.what = seconds, what
        self.fired = False
        self._socks: list[tuple[Any, socket.socket]] = []  # (connection or None, its socket)
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.name = "ocilearn-deadline"

    def start(self) -> "_Deadline":
        self._timer.start()
        return self

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            # socket.socket.shutdown, not SSLSocket.shutdown (which drops the TLS object
            # under the reading thread's feet): the reader then sees EOF at once
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def add(self, conn: Any, sock: socket.socket | None) -> None:
        """Register a socket of this exchange (``conn``: the pooled connection it belongs
        to, or ``None``)."""
        if sock is None:
            return
        with self._lock:
            if self._done:
                return
            self._socks.append((conn, sock))
            if self.fired:
                self._shut(sock)

    def watch(self, resp: Response) -> None:
        """Register the socket a (streaming) response is being read from."""
        sock = getattr(resp, "sock", None)
        if isinstance(sock, socket.socket):
            self.add(None, sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for conn, sock in self._socks:
                if conn is None or getattr(conn, "_ocilearn_deadline", None) is self:
                    self._shut(sock)

    def close(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _active_deadline() -> _Deadline | None:
    return getattr(_ACTIVE, "deadline", None)


# what can escape from reading a response body: http.client's IncompleteRead (a body cut
# short, a malformed chunk), socket errors and timeouts
_BODY_ERRORS = (http.client.HTTPException, OSError, ValueError)


def _describe(e: BaseException) -> str:
    """A short, secret-free description of a transport exception."""
    if isinstance(e, (Timeout, TimeoutError)):
        return "read timed out"
    if isinstance(e, http.client.IncompleteRead):
        ir = e
        got = ir.partial if isinstance(ir.partial, int) else len(ir.partial)
        if ir.expected is None:
            return "the chunked body is malformed or was cut short"
        return f"connection closed early ({got} bytes read, {ir.expected} more expected by Content-Length)"
    text = str(e)
    return f"{type(e).__name__}: {_scrub(text)[:200]}" if text else type(e).__name__


def _read_body(resp: Response, limit: int, what: str, *, truncate: bool = True) -> bytes:
    """Read at most ``limit`` bytes (decoded) of a streaming response's body.

    The body is read in 64 KiB pieces, never whole: a server that sends an endless or
    huge body costs at most ``limit`` + 64 KiB of memory. When the body is longer than
    ``limit`` the connection is closed (never drained); otherwise it goes back to the pool.

    Args:
        resp: a response whose body is not read yet.
        limit: bytes.
        what: what the body is, for messages (``"manifest 127.0.0.1:5000/a:latest"``).
        truncate: True: return the first ``limit`` bytes of a longer body; False: a
            longer body is an error.

    Returns:
        the bytes read.

    Raises:
        RegistryError: the connection broke, a read timed out or the exchange's deadline
            passed while the body streamed; InvalidDocument: (``truncate=False``) the body
            is longer than ``limit``.
    """
    buf = bytearray()
    complete = False
    try:
        while chunk := resp.read1(65536):
            buf += chunk
            if len(buf) > limit:
                break
        else:
            complete = True
            resp.close()  # read to its end: the connection goes back to the pool
    except _BODY_ERRORS as e:
        with contextlib.suppress(Exception):
            resp.close()
        dl = _active_deadline()
        kept = f" ({len(buf)} bytes had been read)" if buf else ""
        if dl is not None and dl.fired:
            raise RegistryError(f"{what}: not received within the {dl.seconds:g} s deadline{kept}") from None
        raise RegistryError(f"{what}: the body broke off: {_describe(e)}{kept}") from None
    if not complete:
        with contextlib.suppress(Exception):
            resp.close()  # closes the connection: the rest of the body is never read
        if not truncate:
            raise InvalidDocument(f"{what}: body is over the {limit}-byte limit (stopped reading)")
        return bytes(buf[:limit])
    return bytes(buf)


def _error_text(resp: Response, seconds: float = DOCUMENT_DEADLINE) -> str:
    """The registry's error message (distribution-spec "Error Codes") in a few words.

    At most :data:`MAX_ERROR_BODY` bytes are read, within the active exchange's deadline
    or else within ``seconds``; an unreadable body gives a short note, never an exception
    (the caller is already reporting the HTTP status)."""
    own = None
    if _active_deadline() is None and seconds:
        own = _Deadline(seconds, "error body")
        own.watch(resp)
        _ACTIVE.deadline = own.start()
    try:
        body = _read_body(resp, MAX_ERROR_BODY, "error body")
    except RegistryError as e:
        return f"(error body unreadable: {str(e).split(': ', 1)[-1]})"
    finally:
        if own is not None:
            own.close()
            _ACTIVE.deadline = None
    return _error_summary(body, resp.headers.get("Content-Type", ""))


def _error_summary(body: bytes, content_type: str) -> str:
    """``CODE: message; …`` from a distribution-spec error body, else its type and size."""
    try:
        errs = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '?')}: {str(e.get('message', ''))[:500]}" for e in errs if isinstance(e, dict))[:4096]
    except (ValueError, AttributeError, TypeError, RecursionError):
        return f"{content_type} body of {len(body)}{'+' if len(body) >= MAX_ERROR_BODY else ''} bytes" if body else ""


# ------------------------------------------------------------------ the client


class RegistryClient:
    """A client for one registry (one ``host[:port]``), shared by all its repositories.

    Args:
        registry: ``host[:port]`` as in a reference (``docker.io`` means Docker Hub).
        creds: :class:`Credentials`, ``"USER:PASS"``, or ``None`` to look them up with
            :func:`load_credentials` (then anonymous if none are stored).
        authfile: a containers ``auth.json`` / Docker ``config.json`` to read instead.
        tls_verify: verify the server's certificate (default). ``False`` also allows
            falling back to plain HTTP, as ``skopeo --tls-verify=false`` does.
        ca_bundle: a PEM file of CA certificates to trust (instead of the system's).
        allow_http: allow plain HTTP; default: only for loopback hosts or when
            ``tls_verify`` is False.
        retries: attempts after the first on connection errors, 429 and 5xx.
        backoff: first backoff delay in seconds (doubles each time, with jitter).
        max_retry_after: the longest ``Retry-After`` (seconds) honoured; longer → error.
        timeout: (connect, read) timeouts in seconds, for each socket operation.
        deadline: seconds a whole document exchange may take — ping, token, manifest,
            tag list, HEAD, push of a manifest: request, headers and body together
            (:data:`DOCUMENT_DEADLINE`, 120 s). A server that keeps the connection alive
            by trickling bytes is cut off there (``RegistryError``). ``None``: no limit.
        blob_stall_seconds, blob_stall_bytes: the blob throughput rule: a blob download
            that receives fewer than ``blob_stall_bytes`` bytes in ``blob_stall_seconds``
            seconds of reading (:data:`BLOB_STALL_BYTES`, 16 KiB, in
            :data:`BLOB_STALL_SECONDS`, 30 s — about 0.5 KiB/s) counts as a broken
            connection: it is resumed with ``Range`` like a reset (``retries`` times),
            then abandoned. A silent server is likewise cut after ``blob_stall_seconds``.
            Blobs have no total deadline (a big layer on a slow link may take hours).
        pool: an :class:`~ocilearn.distribution.httpconn.HTTPPool` to use (one is made
            otherwise): persistent connections, reused by every request to one origin.

    Attributes:
        exchanges: :class:`ExchangeLog` of every HTTP exchange, secrets redacted.
    """

    def __init__(self, registry: str, *, creds: Credentials | str | None = None, authfile: str | os.PathLike | None = None,
                 tls_verify: bool = True, ca_bundle: str | os.PathLike | None = None, allow_http: bool | None = None,
                 retries: int = 4, backoff: float = 0.2, max_retry_after: float = 60.0,
                 timeout: tuple[float, float] = (10.0, 60.0), pool: HTTPPool | None = None,
                 use_stored_credentials: bool = True, deadline: float | None = DOCUMENT_DEADLINE,
                 blob_stall_seconds: float = BLOB_STALL_SECONDS, blob_stall_bytes: int = BLOB_STALL_BYTES) -> None:
        self.registry = registry
        self.api_host = "registry-1.docker.io" if registry == DOCKER_HUB else registry
        if isinstance(creds, str):
            creds = Credentials.parse(creds)
        self._creds_arg = creds
        self._authfile = authfile
        self._use_stored = use_stored_credentials
        self._creds_loaded = creds is not None
        self._creds: Credentials | None = creds
        self.tls_verify = tls_verify
        self.ca_bundle = str(ca_bundle) if ca_bundle else None
        host = self.api_host.rsplit(":", 1)[0] if not self.api_host.endswith("]") else self.api_host
        self.allow_http = (not tls_verify or _is_loopback_host(host)) if allow_http is None else allow_http
        self.retries, self.backoff, self.max_retry_after, self.timeout = retries, backoff, max_retry_after, timeout
        self.deadline = deadline
        self.blob_stall_seconds, self.blob_stall_bytes = blob_stall_seconds, blob_stall_bytes
        # no proxies from the environment, no cookies: the registry is spoken to directly
        self.pool = pool or HTTPPool(USER_AGENT)
        self.exchanges = ExchangeLog()
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._pinged = False
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"RegistryClient({self.registry!r}, base={self._base!r}, user={self.creds.username if self.creds else None!r})"

    # -- credentials ------------------------------------------------------

    @property
    def creds(self) -> Credentials | None:
        """The credentials in use (looked up once, lazily)."""
        if not self._creds_loaded:
            self._creds_loaded = True
            if self._use_stored or self._authfile:
                self._creds = load_credentials(self.registry, authfile=self._authfile)
        return self._creds

    @property
    def _verify(self) -> bool | str:
        if not self.tls_verify:
            return False
        return self.ca_bundle or True

    # -- low level ---------------------------------------------------------

    @contextlib.contextmanager
    def _exchange_deadline(self, what: str) -> Iterator[_Deadline | None]:
        """Run a document exchange under :attr:`deadline` (see :class:`_Deadline`). Nested
        uses (a token fetched during a manifest request) share the outer deadline. When the
        deadline has passed, whatever the interrupted code raised becomes one
        ``RegistryError`` saying so."""
        outer = _active_deadline()
        if outer is not None or not self.deadline:
            yield outer
            return
        dl = _Deadline(self.deadline, what)
        _ACTIVE.deadline = dl.start()
        late = RegistryError(f"{self.registry}: {what}: no complete answer within the {self.deadline:g} s "
                             f"deadline (RegistryClient(deadline=…)); the server is too slow or stalling")
        try:
            yield dl
        except Exception as e:
            if dl.fired and not isinstance(e, (DigestMismatch, InvalidDocument, AuthError)) and "deadline" not in str(e):
                raise late from None
            raise
        finally:
            dl.close()
            _ACTIVE.deadline = None
        if dl.fired:
            # the sockets were shut down mid-exchange: what was received may be cut short
            # (http.client takes EOF inside the headers for their end), so it is not used
            raise late

    def _record(self, method: str, url: str, req_headers: dict, resp: Response | None, started: float,
                note: str, error: str = "") -> Exchange:
        ex = Exchange(
            method=method,
            url=redact_url(url),
            status=resp.status_code if resp is not None else 0,
            request_headers=redact_headers(req_headers),
            response_headers=redact_headers(resp.headers) if resp is not None else {},
            seconds=time.monotonic() - started,
            note=note + (f" ({error})" if error else ""),
        )
        self.exchanges.append(ex)
        accept = req_headers.get("Accept")
        curl = "curl -s" + (" -I" if method == "HEAD" else f" -X {method}" if method != "GET" else "")
        if accept:
            curl += f" -H 'Accept: {accept}'"
        if "Authorization" in req_headers:
            curl += " -H 'Authorization: …'"
        explain.step("registry", f"{method} {urlsplit(url).path}", f"{ex.status or error} {note}".strip(),
                     f"{curl} '{ex.url}'", status=ex.status, url=ex.url, headers=ex.response_headers)
        return ex

    def _send_once(self, method: str, url: str, headers: dict, note: str, data=None,
                   timeout: tuple[float, float] | None = None) -> tuple[Response, Exchange]:
        """One request, redirects followed by hand: ``Authorization`` is
        sent only to the registry's origin (scheme, host, port) — never to a storage host
        a blob redirect points at (the registry's token stays with the registry), never after an https→http downgrade."""
        origin = _origin(self._base or url)
        for _hop in range(6):
            h = dict(headers)
            if _origin(url) != origin:
                # another origin (a storage host, or https→http): no credentials go there
                h.pop("Authorization", None)
            started = time.monotonic()
            try:
                resp = self.pool.request(method, url, headers=h, data=data, timeout=timeout or self.timeout,
                                         verify=self._verify, deadline=_active_deadline())
                if resp.status_code in _REDIRECTS and resp.headers.get("Location"):
                    try:  # a Location that is no URL at all ("http://[::1/x") fails the exchange
                        urlsplit(urljoin(url, resp.headers["Location"]))
                    except ValueError:
                        resp.close()
                        raise
            except ConnectionFailed as e:
                self._record(method, url, h, None, started, note, type(e).__name__)
                raise  # retried by _send; TLSError is looked at by ping
            except (http.client.HTTPException, ValueError) as e:
                # e.g. two different Content-Length headers (InvalidHeader), a malformed URL
                self._record(method, url, h, None, started, note, type(e).__name__)
                raise RegistryError(f"{method} {redact_url(url)}: {_describe(e)}") from None
            ex = self._record(method, url, h, resp, started, note)
            if resp.status_code in _REDIRECTS and resp.headers.get("Location") and method in ("GET", "HEAD"):
                resp.close()
                try:
                    nxt = urljoin(url, resp.headers["Location"])
                    _origin(nxt)  # parses the port: ValueError when out of range
                except ValueError:
                    raise RegistryError(f"{redact_url(url)}: redirect to an invalid URL "
                                        f"{_scrub(resp.headers['Location'])[:200]!r} refused") from None
                if urlsplit(nxt).scheme not in ("http", "https"):
                    raise RegistryError(f"{redact_url(url)}: redirect to a non-HTTP URL refused")
                url = nxt
                continue
            return resp, ex
        raise RegistryError(f"{redact_url(url)}: more than 5 redirects")

    def _sleep_for(self, attempt: int, resp: Response | None, url: str) -> None:
        delay = self.backoff * (2 ** attempt) * (0.75 + random.random() / 2)
        if resp is not None and resp.status_code == 429 or (resp is not None and resp.headers.get("Retry-After")):
            ra = _retry_after(resp.headers.get("Retry-After"))
            if ra is not None:
                if ra > self.max_retry_after:
                    raise RegistryError(
                        f"{redact_url(url)}: {resp.status_code}, Retry-After {ra:.0f} s is over the {self.max_retry_after:.0f} s limit"
                    )
                delay = max(delay, ra)
        time.sleep(delay)

    def _send(self, method: str, url: str, headers: dict | None = None, *, note: str = "", data=None,
              retry: bool = True, timeout: tuple[float, float] | None = None) -> tuple[Response, Exchange]:
        """Send with retries on connection errors, 429 and 5xx (idempotent requests, or
        bodies given as bytes)."""
        headers = dict(headers or {})
        can_retry = retry and (data is None or isinstance(data, (bytes, bytearray)))
        last_exc: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                resp, ex = self._send_once(method, url, headers, note, data=data, timeout=timeout)
            except ConnectionFailed as e:
                last_exc = e
                dl = _active_deadline()
                if not can_retry or attempt == self.retries or (dl is not None and dl.fired):
                    break
                self._sleep_for(attempt, None, url)
                continue
            if resp.status_code in _RETRY_STATUS and can_retry and attempt < self.retries:
                self._sleep_for(attempt, resp, url)
                resp.close()
                continue
            return resp, ex
        raise RegistryError(f"{method} {redact_url(url)}: {type(last_exc).__name__} after {self.retries + 1} attempts: "
                            f"{_scrub(str(last_exc))}")

    # -- base URL and ping --------------------------------------------------

    def ping(self) -> Response:
        """``GET /v2/`` (distribution-spec "Determining support"), choosing https, or
        http when allowed and https fails. Remembers the auth challenge.

        Returns:
            the response (200, or 401 with ``WWW-Authenticate``).

        Raises:
            RegistryError: no answer, or not a v2 registry.
        """
        schemes = ["https", "http"] if self.allow_http else ["https"]
        host = self.api_host.rsplit(":", 1)[0] if not self.api_host.endswith("]") else self.api_host
        if self.allow_http and _is_loopback_host(host) and not self.ca_bundle:
            # a registry on this machine is usually plain HTTP: ask that first (a TLS-only
            # server answers it with 400 and https is tried next)
            schemes = ["http", "https"]
        errors = []
        for scheme in schemes:
            url = f"{scheme}://{self.api_host}/v2/"
            self._base = f"{scheme}://{self.api_host}"
            with self._exchange_deadline(f"GET {url}"):
                try:
                    resp, _ = self._send_once("GET", url, {}, "ping")
                except TLSError as e:
                    errors.append(f"{scheme}: {_scrub(str(e))}")
                    if self.tls_verify and "CERTIFICATE_VERIFY_FAILED" in str(e):
                        break  # a TLS server with a bad certificate: never downgrade
                    continue
                except ConnectionFailed as e:
                    dl = _active_deadline()
                    if dl is not None and dl.fired:
                        raise
                    errors.append(f"{scheme}: {type(e).__name__}")
                    continue
                # the body is normally "{}": read at most MAX_PING_BODY bytes of it
                body = _read_body(resp, MAX_PING_BODY, f"{url}: ping body")
                if scheme == "http" and resp.status_code == 400 and len(schemes) > 1 and schemes[0] == "http":
                    errors.append("http: 400 (a TLS server?)")
                    continue
                if resp.status_code in _RETRY_STATUS:
                    # a proxy or a busy registry: one retried GET
                    resp, _ = self._send("GET", url, note="ping")
                    body = _read_body(resp, MAX_PING_BODY, f"{url}: ping body")
                resp.content = body  # the (capped) body already read
                if resp.status_code == 401:
                    chals = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
                    self._challenge = next((c for c in chals if c.scheme == "bearer"), None) or next(
                        (c for c in chals if c.scheme == "basic"), None)
                elif resp.status_code in (429, 503):
                    # distribution-spec "Determining support": a registry that is rate limiting
                    # (RFC 6585 section 4) or down for now (RFC 9110 section 15.6.4) is still a
                    # registry; say so, with its Retry-After (RFC 9110 section 10.2.3)
                    what = "rate limited (429 Too Many Requests)" if resp.status_code == 429 else "unavailable (503 Service Unavailable)"
                    ra = resp.headers.get("Retry-After")
                    raise RegistryError(f"{url}: GET /v2/: the registry is {what}"
                                        + (f"; it asks to retry after {_scrub(ra)[:60]}" + (" s" if ra.strip().isdigit() else "")
                                           if ra else "; no Retry-After given")
                                        + f" {_error_summary(body, resp.headers.get('Content-Type', ''))}".rstrip())
                elif resp.status_code != 200:
                    raise RegistryError(f"{url}: GET /v2/ answered {resp.status_code}, not a registry? "
                                        f"{_error_summary(body, resp.headers.get('Content-Type', ''))}")
                self._pinged = True
                return resp
        self._base = None
        hint = "" if self.allow_http else " (plain HTTP is only tried for loopback hosts or with --tls-verify=false)"
        raise RegistryError(f"cannot reach registry {self.api_host}: {'; '.join(errors)}{hint}")

    @property
    def base(self) -> str:
        """``scheme://host[:port]`` of the registry API (pings on first use)."""
        if self._base is None or not self._pinged:
            self.ping()
        assert self._base is not None
        return self._base

    # -- auth ------------------------------------------------------------------

    def _basic(self) -> str | None:
        c = self.creds
        if c is None or not c.username:
            return None
        return "Basic " + base64.b64encode(f"{c.username}:{c.password}".encode()).decode()

    def _token(self, chal: Challenge, scopes: tuple[str, ...], force: bool = False) -> str:
        """A Bearer token for ``scopes`` from the challenge's realm (cached until expiry).

        Docker token spec: ``GET realm?service=S&scope=A&scope=B`` (Basic auth when we
        have credentials); the OAuth2 form ``POST`` (grant_type=refresh_token with an
        identity token, or password when the GET is refused with 404/405)."""
        key = (chal.params.get("realm", ""), chal.params.get("service", ""), *sorted(set(scopes)))
        with self._lock:
            hit = self._tokens.get(key)
            if hit and not force and hit[1] > time.time():
                return hit[0]
            realm = chal.params.get("realm")
            try:
                usable = bool(realm) and urlsplit(realm).scheme in ("http", "https") and bool(_origin(realm)[1])
            except ValueError:  # "http://[::1", a port out of range …
                usable = False
            if not usable:
                raise AuthError(f"{self.registry}: Bearer challenge has no usable realm")
            if urlsplit(realm).scheme == "http" and not _is_loopback_host(urlsplit(realm).hostname or "") and not (
                    self.allow_http and not self.tls_verify):
                raise AuthError(f"{self.registry}: token realm {redact_url(realm)} is plain HTTP; refused (use https)")
            service = chal.params.get("service")
            creds = self.creds
            query = [("service", service)] if service else []
            query += [("scope", s) for s in key[2:]]
            headers: dict[str, str] = {}
            with self._exchange_deadline(f"token from {redact_url(realm)}"):
                try:
                    resp = None
                    if creds is not None and creds.identity_token:
                        form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "ocilearn",
                                "scope": " ".join(key[2:])}
                        if service:
                            form["service"] = service
                        resp, _ = self._send_once("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, "token (OAuth2 refresh)",
                                                  data=urlencode(form))
                    else:
                        b = self._basic()
                        if b:
                            headers["Authorization"] = b
                        sep = "&" if urlsplit(realm).query else "?"
                        url = realm + (sep + urlencode(query) if query else "")
                        resp, _ = self._token_get(url, headers)
                        if resp.status_code in (404, 405) and creds is not None and creds.username:
                            resp.close()
                            form = {"grant_type": "password", "username": creds.username, "password": creds.password,
                                    "client_id": "ocilearn", "scope": " ".join(key[2:])}
                            if service:
                                form["service"] = service
                            resp, _ = self._token_get(realm, {"Content-Type": "application/x-www-form-urlencoded"}, post=urlencode(form))
                    # a token answer is a small JSON object: read at most MAX_TOKEN_BODY bytes
                    body = _read_body(resp, MAX_TOKEN_BODY, f"{self.registry}: token server {redact_url(realm)}",
                                      truncate=False)
                except (ConnectionFailed, InvalidDocument, http.client.HTTPException, ValueError) as e:
                    dl = _active_deadline()
                    if dl is not None and dl.fired:
                        raise
                    why = "answer is over the 1 MiB limit" if isinstance(e, InvalidDocument) else f"no answer ({type(e).__name__})"
                    raise AuthError(f"{self.registry}: token server {redact_url(realm)}: {why}") from None
                except RegistryError as e:
                    raise AuthError(str(e)) from None
            if resp.status_code in (401, 403):
                who = f"as {creds.username!r}" if creds and creds.username else "anonymously"
                raise AuthError(f"{self.registry}: token server {redact_url(realm)} refused {who} "
                                f"(HTTP {resp.status_code}) for scope {' '.join(key[2:]) or '(none)'}")
            if resp.status_code != 200:
                raise AuthError(f"{self.registry}: token server {redact_url(realm)} answered HTTP {resp.status_code}")
            try:
                obj = json.loads(body)
                token = obj.get("token") or obj.get("access_token")
            except (ValueError, AttributeError, RecursionError):
                token = None
                obj = {}
            if not isinstance(token, str) or not token:
                raise AuthError(f"{self.registry}: token server {redact_url(realm)} sent no token")
            try:
                ttl = float(obj.get("expires_in") or 60)
            except (TypeError, ValueError):
                ttl = 60.0
            self._tokens[key] = (token, time.time() + max(ttl - 5, 1))
            return token

    def _token_get(self, url: str, headers: dict, post: str | None = None) -> tuple[Response, Exchange]:
        # the token realm is its own origin: Authorization is meant for it
        started = time.monotonic()
        method = "POST" if post is not None else "GET"
        resp = self.pool.request(method, url, headers=headers, data=post, timeout=self.timeout, verify=self._verify,
                                 deadline=_active_deadline())
        return resp, self._record(method, url, headers, resp, started, "token")

    def _auth_header(self, scopes: tuple[str, ...], force: bool = False) -> dict[str, str]:
        chal = self._challenge
        if chal is None:
            return {}
        if chal.scheme == "basic":
            b = self._basic()
            if b is None:
                raise AuthError(f"{self.registry} requires a user name and password (HTTP Basic); use --creds USER:PASS or an auth file")
            return {"Authorization": b}
        if chal.scheme == "bearer":
            return {"Authorization": f"Bearer {self._token(chal, scopes, force)}"}
        raise AuthError(f"{self.registry}: unsupported auth scheme {chal.scheme!r}")

    def request(self, method: str, path_or_url: str, *, scope: str | tuple[str, ...] = (), headers: dict | None = None,
                note: str = "", data=None, retry: bool = True,
                timeout: tuple[float, float] | None = None) -> tuple[Response, Exchange]:
        """Send an authenticated request to the registry (path relative to the base URL).

        On a 401 the challenge is read again (it may ask for more scope, RFC 6750 §3),
        a fresh token is fetched once and the request repeated.

        Raises:
            AuthError: 401/403 after authenticating; RegistryError: no answer.
        """
        scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        hdrs = dict(headers or {})
        hdrs.update(self._auth_header(scopes))
        resp, ex = self._send(method, url, hdrs, note=note, data=data, retry=retry, timeout=timeout)
        if resp.status_code == 401:
            chals = parse_challenges(resp.headers.get("WWW-Authenticate", ""))
            chal = next((c for c in chals if c.scheme == "bearer"), None) or next((c for c in chals if c.scheme == "basic"), None)
            resp.close()
            if chal is None:
                raise AuthError(f"{self.registry}: {method} {redact_url(url)}: 401 without a usable challenge")
            retried_basic = chal.scheme == "basic" and self._challenge is not None and self._challenge.scheme == "basic"
            self._challenge = chal
            if retried_basic:
                who = f"user {self.creds.username!r}" if self.creds else "anonymous"
                raise AuthError(f"{self.registry}: {method} {redact_url(url)}: 401 Unauthorized for {who} (wrong user name or password?)")
            more = tuple(dict.fromkeys(scopes + tuple(chal.scopes)))
            hdrs = dict(headers or {})
            hdrs.update(self._auth_header(more, force=True))
            resp, ex = self._send(method, url, hdrs, note=note + " (after auth)", data=data, retry=retry, timeout=timeout)
        if resp.status_code in (401, 403):
            text = _error_text(resp, self.deadline or 0)
            resp.close()
            who = f"user {self.creds.username!r}" if self.creds and self.creds.username else "anonymous"
            raise AuthError(f"{self.registry}: {method} {redact_url(url)}: HTTP {resp.status_code} for {who}: {text}")
        return resp, ex

    # -- manifests -----------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str | Digest, *, accept: str = mt.MANIFEST_ACCEPT) -> FetchedManifest:
        """``GET /v2/<name>/manifests/<reference>`` — the exact bytes, verified.

        Args:
            repository: e.g. ``library/busybox``.
            reference: a tag or a digest.

        Returns:
            :class:`FetchedManifest`.

        Raises:
            RegistryError: not found (404) or another error status, or a body that is no
                manifest (an HTML page, say); InvalidDocument: over 4 MiB or malformed;
                DigestMismatch: the bytes do not hash to the requested digest or to the
                ``Docker-Content-Digest`` header.
        """
        want = Digest.parse(reference) if isinstance(reference, Digest) or str(reference).startswith(("sha256:", "sha512:")) else None
        path = f"/v2/{repository}/manifests/{want or reference}"
        what = f"{self.registry}/{repository}:{reference}: manifest"
        with self._exchange_deadline(f"GET manifest {repository}:{reference}"):
            resp, ex = self.request("GET", path, scope=f"repository:{repository}:pull", headers={"Accept": accept}, note="manifest")
            with resp:
                if resp.status_code != 200:
                    raise RegistryError(f"{self.registry}/{repository}:{reference}: GET manifest answered HTTP "
                                        f"{resp.status_code}: {_error_text(resp)}")
                length = resp.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > MAX_MANIFEST:
                    raise InvalidDocument(f"{self.registry}/{repository}:{reference}: manifest is {length} bytes, over the "
                                          f"{MAX_MANIFEST}-byte limit (refused before reading)")
                # streamed in pieces, at most MAX_MANIFEST bytes; a broken or stalled body
                # (Content-Length lie, read timeout, deadline) becomes a RegistryError
                buf = _read_body(resp, MAX_MANIFEST, what, truncate=False)
        raw = bytes(buf)
        ex.bytes = len(raw)
        source = f"{self.registry}/{repository}@{want or reference}"
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
        header = resp.headers.get("Docker-Content-Digest")
        if want is not None:
            actual = Digest.of(raw, want.algorithm)
            if actual != want:
                raise DigestMismatch(want, actual, f"manifest {source} from the registry")
        else:
            actual = Digest.of(raw)
            if header:
                try:
                    hd = Digest.parse(header.strip())
                except Exception:
                    raise RegistryError(f"{source}: malformed Docker-Content-Digest header {header!r}") from None
                if Digest.of(raw, hd.algorithm) != hd:
                    raise DigestMismatch(hd, Digest.of(raw, hd.algorithm),
                                         f"manifest {source}: the Docker-Content-Digest header disagrees with the body")
        try:
            try:
                doc = parse_document(raw, ctype if (mt.is_manifest(ctype) or mt.is_index(ctype)) else None, source)
            except RecursionError:
                raise InvalidDocument(f"{source}: JSON nested too deeply to parse") from None
        except InvalidDocument as e:
            if not (mt.is_manifest(ctype) or mt.is_index(ctype)):
                raise RegistryError(f"{source}: expected an image manifest or index, got {ctype or 'no Content-Type'} "
                                    f"({len(raw)} bytes) — a proxy or login page? ({str(e)[:200]})") from None
            raise
        media_type = doc.media_type or (ctype if (mt.is_manifest(ctype) or mt.is_index(ctype)) else
                                        (mt.OCI_INDEX if isinstance(doc, Index) else mt.OCI_MANIFEST))
        return FetchedManifest(raw, media_type, actual, doc)

    def head_manifest(self, repository: str, reference: str) -> tuple[Digest | None, str, int | None]:
        """``HEAD /v2/<name>/manifests/<reference>``: (digest or None, media type, size).
        The digest header is optional (distribution-spec "Pulling manifests": SHOULD): see :meth:`resolve_digest`."""
        with self._exchange_deadline(f"HEAD manifest {repository}:{reference}"):
            resp, ex = self.request("HEAD", f"/v2/{repository}/manifests/{reference}", scope=f"repository:{repository}:pull",
                                    headers={"Accept": mt.MANIFEST_ACCEPT}, note="manifest HEAD")
            resp.close()
        if resp.status_code == 404:
            return None, "", None
        if resp.status_code != 200:
            raise RegistryError(f"{self.registry}/{repository}:{reference}: HEAD manifest answered HTTP {resp.status_code}")
        d = resp.headers.get("Docker-Content-Digest")
        size = resp.headers.get("Content-Length")
        return (Digest.parse(d.strip()) if d else None, resp.headers.get("Content-Type", "").split(";")[0],
                int(size) if size and size.isdigit() else None)

    def resolve_digest(self, repository: str, tag: str) -> Digest:
        """The digest a tag points at: from HEAD's ``Docker-Content-Digest``, or — the
        header being optional — by GET and hashing the body (distribution-spec "Pulling manifests")."""
        d, _, _ = self.head_manifest(repository, tag)
        if d is not None:
            return d
        return self.get_manifest(repository, tag).digest

    # -- blobs -------------------------------------------------------------------------

    def open_blob(self, repository: str, desc: Descriptor, *, offset: int = 0,
                  timeout: tuple[float, float] | None = None) -> tuple[Response, Exchange]:
        """``GET /v2/<name>/blobs/<digest>`` (from byte ``offset`` with ``Range``).

        Returns the streaming response (200, or 206 for a range) and its exchange.

        Raises:
            RegistryError: 404 or another error status.
        """
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        # the response head (and a token fetched on the way) is a document exchange under
        # the deadline: the per-read timeout never trips on a server trickling its status
        # line or headers, and the throughput rule only watches the body
        with self._exchange_deadline(f"GET blob {desc.digest}"):
            resp, ex = self.request("GET", f"/v2/{repository}/blobs/{desc.digest}", scope=f"repository:{repository}:pull",
                                    headers=headers, note=f"blob {desc.digest.short}" + (f" from byte {offset}" if offset else ""),
                                    timeout=timeout)
            if resp.status_code not in (200, 206):
                text = _error_text(resp, self.deadline or 0)
                resp.close()
                raise RegistryError(f"{self.registry}/{repository}: blob {desc.digest}: HTTP {resp.status_code} {text}")
        return resp, ex

    def blob_reader(self, repository: str, desc: Descriptor, progress: Callable[[int], None] | None = None) -> "BlobStream":
        """A file-like reader of a blob's bytes that resumes after a broken connection."""
        return BlobStream(self, repository, desc, progress)

    def blob_exists(self, repository: str, digest: Digest) -> bool:
        """``HEAD /v2/<name>/blobs/<digest>``: True on 200, False on 404."""
        with self._exchange_deadline(f"HEAD blob {digest}"):
            resp, _ = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull,push",
                                   note="blob exists?")
            resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise RegistryError(f"{self.registry}/{repository}: HEAD blob {digest}: HTTP {resp.status_code}")

    def _upload_url(self, location: str, **params: str) -> str:
        url = urljoin(self.base + "/", location)
        p = urlsplit(url)
        q = parse_qsl(p.query, keep_blank_values=True) + list(params.items())
        return urlunsplit((p.scheme, p.netloc, p.path, urlencode(q), ""))

    def mount_blob(self, repository: str, digest: Digest, from_repository: str) -> bool:
        """Cross-repository mount: ``POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>``.
        True when the registry mounted it (201); False when it started an upload instead
        (202, which we cancel)."""
        resp, _ = self.request("POST", f"/v2/{repository}/blobs/uploads/?{urlencode({'mount': str(digest), 'from': from_repository})}",
                               scope=(f"repository:{repository}:pull,push", f"repository:{from_repository}:pull"),
                               note="mount blob", data=b"")
        resp.close()
        if resp.status_code == 201:
            return True
        if resp.status_code == 202 and resp.headers.get("Location"):
            with contextlib.suppress(RegistryError, ConnectionFailed):
                r, _ = self.request("DELETE", self._upload_url(resp.headers["Location"]),
                                    scope=f"repository:{repository}:pull,push", note="cancel upload")
                r.close()
            return False
        return False

    def upload_blob(self, repository: str, digest: Digest, size: int, opener: Callable[[], BinaryIO], *,
                    chunk_size: int | None = None, progress: Callable[[int], None] | None = None) -> None:
        """Upload a blob: ``POST`` to start, then one ``PUT ?digest=`` with the whole body
        (monolithic), or ``PATCH`` chunks of ``chunk_size`` bytes with ``Content-Range``
        then a closing ``PUT ?digest=`` (chunked). ``opener()`` returns a fresh stream
        of the blob (called again when the upload is retried).

        Raises:
            RegistryError: the registry refused (e.g. DIGEST_INVALID).
        """
        scope = f"repository:{repository}:pull,push"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                resp, _ = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope, note="start upload", data=b"")
                resp.close()
                if resp.status_code != 202 or not resp.headers.get("Location"):
                    raise RegistryError(f"{self.registry}/{repository}: POST upload answered HTTP {resp.status_code}")
                location = resp.headers["Location"]
                with opener() as f:
                    if chunk_size is None or size <= chunk_size:
                        body = _ProgressReader(f, progress, size)
                        resp, ex = self.request("PUT", self._upload_url(location, digest=str(digest)), scope=scope,
                                                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                                                note=f"upload {digest.short}", data=body, retry=False)
                        ex.bytes = size
                    else:
                        offset = 0
                        while offset < size:
                            chunk = f.read(min(chunk_size, size - offset))
                            if not chunk:
                                raise RegistryError(f"{digest}: source ended at byte {offset} of {size}")
                            resp, ex = self.request(
                                "PATCH", self._upload_url(location), scope=scope,
                                headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                                         "Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
                                note=f"upload chunk {digest.short}", data=chunk, retry=False)
                            if resp.status_code != 202:
                                text = _error_text(resp, self.deadline or 0)
                                resp.close()
                                raise RegistryError(f"{self.registry}/{repository}: PATCH chunk at {offset}: HTTP {resp.status_code} {text}")
                            resp.close()
                            location = resp.headers.get("Location", location)
                            offset += len(chunk)
                            if progress:
                                progress(len(chunk))
                        resp, ex = self.request("PUT", self._upload_url(location, digest=str(digest)), scope=scope,
                                                headers={"Content-Length": "0"}, note=f"finish upload {digest.short}", data=b"", retry=False)
                if resp.status_code not in (201, 204):
                    text = _error_text(resp, self.deadline or 0)
                    resp.close()
                    raise RegistryError(f"{self.registry}/{repository}: upload of {digest} answered HTTP {resp.status_code}: {text}")
                resp.close()
                return
            except ConnectionFailed as e:
                last = e
                if attempt < self.retries:
                    self._sleep_for(attempt, None, location if "location" in locals() else self.base)
                    continue
        raise RegistryError(f"{self.registry}/{repository}: upload of {digest} failed: {type(last).__name__}")

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """``PUT /v2/<name>/manifests/<reference>`` with ``Content-Type: media_type``.

        Returns:
            the digest of ``raw`` (checked against the registry's ``Docker-Content-Digest``).

        Raises:
            RegistryError: refused (e.g. MANIFEST_BLOB_UNKNOWN when a child is missing).
        """
        digest = Digest.of(raw)
        with self._exchange_deadline(f"PUT manifest {repository}:{reference}"):
            resp, ex = self.request("PUT", f"/v2/{repository}/manifests/{reference}", scope=f"repository:{repository}:pull,push",
                                    headers={"Content-Type": media_type}, note="put manifest", data=raw)
            ex.bytes = len(raw)
            with resp:
                if resp.status_code not in (200, 201):
                    raise RegistryError(f"{self.registry}/{repository}:{reference}: PUT manifest answered HTTP {resp.status_code}: {_error_text(resp)}")
                got = resp.headers.get("Docker-Content-Digest")
        if got and got.strip() != str(digest):
            raise DigestMismatch(digest, got.strip(), f"registry's digest for the manifest pushed to {repository}:{reference}")
        return digest

    def tags(self, repository: str, *, max_pages: int = MAX_TAG_PAGES, max_tags: int = MAX_TAGS) -> list[str]:
        """``GET /v2/<name>/tags/list`` following ``Link: <…>; rel="next"`` pagination
        (distribution-spec "Listing Tags").

        Each page is a document exchange (capped at :data:`MAX_TAGS_BODY` bytes, under
        :attr:`deadline`). A ``next`` link must stay on the registry's origin and must not
        repeat a page already read; at most ``max_pages`` pages and ``max_tags`` tags.

        Returns:
            the tags, in the registry's order.

        Raises:
            RegistryError: an error status, a page that is no ``{"tags": [str, …]}`` JSON,
                a link loop, a link to another origin, or more than ``max_pages`` pages /
                ``max_tags`` tags.
        """
        out: list[str] = []
        where = f"{self.registry}/{repository}: tags/list"
        url: str | None = self.base + f"/v2/{repository}/tags/list"
        seen: set[str] = set()
        while url:
            if url in seen:
                raise RegistryError(f"{where}: the Link to the next page points back to a page already read "
                                    f"({redact_url(url)}): a pagination loop")
            if len(seen) >= max_pages:
                raise RegistryError(f"{where}: more than {max_pages} pages; stopped")
            seen.add(url)
            with self._exchange_deadline(f"GET tags of {repository}"):
                resp, ex = self.request("GET", url, scope=f"repository:{repository}:pull", note="tags")
                with resp:
                    if resp.status_code != 200:
                        raise RegistryError(f"{where} answered HTTP {resp.status_code}: {_error_text(resp)}")
                    raw = _read_body(resp, MAX_TAGS_BODY, where, truncate=False)
            try:
                body = json.loads(raw)
                tags = body.get("tags") or []
            except (ValueError, AttributeError, RecursionError):
                raise RegistryError(f"{where} answered with no JSON object "
                                    f"({resp.headers.get('Content-Type') or 'no Content-Type'}, {len(raw)} bytes)") from None
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RegistryError(f"{where}: 'tags' is not a list of strings")
            out += tags
            if len(out) > max_tags:
                raise RegistryError(f"{where}: more than {max_tags} tags; stopped")
            nxt = resp.links.get("next", {}).get("url")
            url = urljoin(url, nxt) if nxt else None
            if url is not None and _origin(url) != _origin(self.base):
                raise RegistryError(f"{where}: the Link to the next page leaves the registry ({redact_url(url)}); refused")
        return out


def _scrub(text: str) -> str:
    """Remove anything that looks like a credential from a library error message."""
    import re

    text = re.sub(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(basic|bearer)\s+[A-Za-z0-9._~+/=-]+", r"\1\2 " + REDACTED, text)
    text = re.sub(r"://[^/@\s]+@", "://" + REDACTED + "@", text)
    names = "|".join(re.escape(n) for n in sorted(_SECRET_PARAMS, key=len, reverse=True))
    text = re.sub(rf"(?i)([?&](?:{names})=)[^&\s'\")]+", r"\1" + REDACTED, text)
    return text


class _ProgressReader:
    """Wraps a stream for a request body, reporting bytes read."""

    def __init__(self, f: BinaryIO, progress: Callable[[int], None] | None, size: int) -> None:
        self._f, self._p, self._size = f, progress, size

    def __len__(self) -> int:
        # the size, for callers that ask (the request carries it as Content-Length)
        return self._size

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n if n and n > 0 else CHUNK)
        if data and self._p:
            self._p(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk


class _Stalled(Exception):
    """A blob download broke the throughput rule (handled like a broken connection)."""


class BlobStream:
    """A blob download as a readable stream that survives broken connections.

    ``read(n)`` returns the blob's bytes in order. When the connection breaks, the
    request is sent again with ``Range: bytes=<offset>-``; a 206 continues where it
    stopped, a 200 (the server ignores ranges) is skipped forward to the offset. At most
    ``client.retries`` resumptions. The bytes are not verified here: pass the stream to
    :meth:`ocilearn.image.layout.ImageLayout.put_blob` with the expected digest and size.

    Throughput rule (against a server that trickles bytes to hold the download open):
    time spent waiting inside ``read`` is measured in windows of
    ``client.blob_stall_seconds`` seconds; a window in which fewer than
    ``client.blob_stall_bytes`` bytes arrived counts as a broken connection (resumed, then
    abandoned). Each socket read also times out after ``blob_stall_seconds``. Time the
    caller spends between reads (writing, hashing) is not counted.

    Raises (from ``read``):
        RegistryError: the download could not be completed (the message says why: reset,
            read timeout, stall); SizeMismatch: the server sent a complete body
            (``Content-Length`` honoured, or a chunked body properly ended) that is
            shorter than the descriptor's ``size``.
    """

    def __init__(self, client: RegistryClient, repository: str, desc: Descriptor, progress: Callable[[int], None] | None = None) -> None:
        self.client, self.repository, self.desc, self.progress = client, repository, desc, progress
        self.offset = 0
        self.resumes = 0
        self._resp: Response | None = None
        self._ex: Exchange | None = None
        self._broken: BaseException | None = None
        self._resp_bytes = 0  # body bytes taken from the current response (skipped ones too)
        self._win_time = 0.0  # seconds spent reading in the current throughput window
        self._win_bytes = 0  # bytes received in it

    @property
    def _where(self) -> str:
        return f"{self.client.registry}/{self.repository}: blob {self.desc.digest}"

    def _timeout(self) -> tuple[float, float]:
        connect, read = self.client.timeout
        return connect, min(read, self.client.blob_stall_seconds)

    def _count(self, n: int, seconds: float) -> None:
        """Apply the throughput rule to ``n`` bytes received in ``seconds`` of waiting."""
        self._win_time += seconds
        self._win_bytes += n
        if self._win_time >= self.client.blob_stall_seconds:
            if self._win_bytes < self.client.blob_stall_bytes:
                got, self._win_time, self._win_bytes = self._win_bytes, 0.0, 0
                raise _Stalled(f"stalled: {got} bytes in {self.client.blob_stall_seconds:g} s, under the minimum of "
                               f"{self.client.blob_stall_bytes} bytes per {self.client.blob_stall_seconds:g} s")
            self._win_time, self._win_bytes = 0.0, 0

    def _open(self) -> None:
        resp, ex = self.client.open_blob(self.repository, self.desc, offset=self.offset, timeout=self._timeout())
        self._resp, self._ex, self._resp_bytes = resp, ex, 0
        if self.offset and resp.status_code == 200:
            skip = self.offset  # server ignored Range: read and drop what we have
            while skip:
                t0 = time.monotonic()
                data = resp.read1(min(skip, CHUNK))
                self._count(len(data), time.monotonic() - t0)
                if not data:
                    raise RegistryError(f"{self.desc.digest}: server restarted the blob and ended early")
                skip -= len(data)
                self._resp_bytes += len(data)
        elif self.offset and resp.status_code == 206:
            cr = resp.headers.get("Content-Range", "")
            if not cr.startswith(f"bytes {self.offset}-"):
                resp.close()
                self._resp = None
                raise RegistryError(f"{self.desc.digest}: asked for bytes {self.offset}-, got Content-Range {cr!r}")

    def _read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes as they arrive (``read1``), so bytes received before a
        connection breaks are kept and the resume starts after them."""
        assert self._resp is not None
        out = bytearray()
        while len(out) < n:
            t0 = time.monotonic()
            try:
                data = self._resp.read1(n - len(out))
                out += data
                self._resp_bytes += len(data)
                self._count(len(data), time.monotonic() - t0)
            except Exception as e:
                if out:
                    self._broken = e  # hand over what arrived; resume on the next read
                    break
                raise
            if not data:
                break
        return bytes(out)

    def _complete(self) -> bool:
        """Did the current response end as the server said it would (all of its
        ``Content-Length``, or a chunked body ended by its last chunk)? Then an early end
        is the blob's size, not a broken connection."""
        resp = self._resp
        if resp is None:
            return False
        length = resp.headers.get("Content-Length", "")
        if length.isdigit():
            return int(length) == self._resp_bytes
        return "chunked" in resp.headers.get("Transfer-Encoding", "").lower()

    def read(self, n: int = CHUNK) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        while True:
            try:
                if self._broken is not None:
                    e, self._broken = self._broken, None
                    raise e
                if self._resp is None:
                    self._open()
                data = self._read_some(n)
                if not data and self.offset < self.desc.size:
                    if self._complete():
                        self.close()
                        raise SizeMismatch(self.desc.size, self.offset,
                                           f"{self._where} (the registry sent a complete body of {self.offset} bytes)")
                    raise ConnectionError(f"connection closed at byte {self.offset} of {self.desc.size}")
            except OcilearnError:
                self.close()
                raise
            except Exception as e:  # IncompleteRead, a read timeout, ConnectionFailed, _Stalled …
                if self._resp is not None:
                    with contextlib.suppress(Exception):
                        self._resp.close()
                self._resp = None
                why = str(e) if isinstance(e, _Stalled) else _describe(e)
                if self._ex is not None:
                    self._ex.note += f" (broken after {self.offset} bytes: {type(e).__name__})"
                if self.resumes >= self.client.retries:
                    raise RegistryError(f"{self._where}: download broke {self.resumes + 1} times; last at byte "
                                        f"{self.offset}: {why}") from None
                self.client._sleep_for(self.resumes, None, "")
                self.resumes += 1
                continue
            if data:
                self.offset += len(data)
                if self._ex is not None:
                    self._ex.bytes += len(data)
                if self.progress:
                    self.progress(len(data))
            return data

    def close(self) -> None:
        if self._resp is not None:
            with contextlib.suppress(Exception):
                self._resp.close()
            self._resp = None

    def __enter__(self) -> "BlobStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def client_for(ref: Reference, **kw: Any) -> RegistryClient:
    """A :class:`RegistryClient` for the registry of ``ref`` (keyword arguments as for
    the constructor)."""
    return RegistryClient(ref.registry, **kw)
