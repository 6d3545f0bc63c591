"""The one HTTP policy for every request ftstudy sends (a judge, a model server, a benchmark file download).

The server at the other end may be hostile or broken (a judge URL is whatever the user typed), so:

- **A total deadline per request.** `timeout` bounds the whole request, connection, headers and body
  together: a watchdog shuts the socket down when it passes. A socket timeout alone applies per read, and a
  server sending a byte every half second would hold it for ever.
- **A size cap on the reply** (`MAX_REPLY_BYTES`, or `max_bytes`): a declared length over it is refused
  before reading; a stream is read up to the cap and refused there, never read whole.
- **Redirects.** A POST is never redirected: urllib would repeat it as a GET without its body, and that
  GET's answer is not the answer to the request. A request that carries credentials (any header the caller
  adds, such as a judge's Authorization, or a URL with user-info or a query) follows a redirect only to the
  same origin (scheme, host, port), so a key never travels to another server; a plain GET (a public file,
  a health check) follows redirects anywhere, at most MAX_REDIRECTS times.
- Every URL in an error is shown through `redact.url`.

Any HTTP status comes back as a `Reply` (callers decide what a 401 or a 503 means); what the policy refuses
raises `Refused`, a passed deadline `TimedOut`, a server that cannot be reached `Unreachable`: each a
`UserError` of one line.

Example:
    >>> origin("https://user:pw@API.example.com/v1?key=x"), origin("http://127.0.0.1:8000/v1")
    (('https', 'api.example.com', 443), ('http', '127.0.0.1', 8000))
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message

from ftstudy.core import redact
from ftstudy.core.errors import UserError

MAX_REPLY_BYTES = 64 << 20   # a chat completion is kilobytes; the largest benchmark file a few MB
MAX_REDIRECTS = 5
_CHUNK = 1 << 16
_PLAIN_HEADERS = frozenset({"content-type", "accept", "user-agent"})  # headers that carry no credential


class Refused(UserError):
    """The policy refused the exchange: a redirect it does not follow, or a reply over the size cap."""


class TimedOut(UserError, TimeoutError):
    """The request did not complete within its total deadline."""


class Unreachable(UserError, ConnectionError):
    """No connection, or it broke before the reply was complete; `reason` says how."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes
    url: str  # the URL that answered (differs from the one asked after a followed redirect)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what "the same server" means."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def carries_credentials(url: str, headers: dict[str, str] | None) -> bool:
    """True when a request would carry a secret: a header other than the plain ones, or a URL with user-info,
    a query or a fragment (redact.url() would change it)."""
    return any(k.lower() not in _PLAIN_HEADERS for k in (headers or {})) or redact.url(url) != url


class _Deadline:
    """A watchdog that shuts down every socket of one request when its total time is up."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def left(self) -> float:
        return max(0.001, self.end - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                self._shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:  # the plain socket's shutdown, also under TLS: it wakes a blocked read in the other thread
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


class _OnDeadline:
    """Connection mixin: connect within the time left, then let the deadline watch the socket."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def connect(self):
        given = self.timeout if isinstance(self.timeout, (int, float)) else None
        self.timeout = min(given, self.deadline.left()) if given else self.deadline.left()
        super().connect()
        self.deadline.watch(self.sock)


class _Connection(_OnDeadline, http.client.HTTPConnection):
    pass


class _TLSConnection(_OnDeadline, http.client.HTTPSConnection):
    pass


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req):
        return self.do_open(_Connection, req, deadline=self.deadline)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline
        self.tls = ssl.create_default_context()

    def https_open(self, req):
        return self.do_open(_TLSConnection, req, context=self.tls, deadline=self.deadline)


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, credentialed: bool):
        super().__init__()
        self.credentialed = credentialed

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        here, there = redact.url(req.full_url), redact.url(newurl)
        if req.get_method() not in ("GET", "HEAD"):
            fp.close()
            raise Refused(f"{here} answered HTTP {code}, a redirect to {there}; ftstudy does not follow a redirected "
                          f"{req.get_method()} (its reply would not answer the request): pass the final URL instead")
        if self.credentialed and origin(newurl) != origin(req.full_url):
            fp.close()
            raise Refused(f"{here} answered HTTP {code}, a redirect to another server ({there}); ftstudy sends no key "
                          "or credential there: pass that URL yourself if you trust it")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read(resp, cap: int, where: str) -> bytes:
    """The body, one socket read at a time, refused as soon as it passes `cap` bytes."""
    declared = (resp.headers.get("Content-Length") or "").strip() if resp.headers else ""
    if declared.isdigit() and int(declared) > cap:
        raise Refused(f"{where} sent a reply of {int(declared):,} bytes, over ftstudy's limit of {cap:,}; "
                      "is this the right URL?")
    chunks, size = [], 0
    while chunk := resp.read1(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise Refused(f"{where} sent more than {cap:,} bytes; ftstudy stopped reading at its limit: "
                          "is this the right URL?")
        chunks.append(chunk)
    return b"".join(chunks)


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30.0,
            max_bytes: int | None = None, method: str | None = None) -> Reply:
    """One HTTP request under the policy above; the reply (any status) read whole within `timeout` seconds.

    Example:
        >>> request("http://127.0.0.1:9/health", timeout=2)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ftstudy.core.outbound.Unreachable: cannot reach http://127.0.0.1:9/health (...)
    """
    where = redact.url(url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:  # urllib would also read file:// and ftp://
        raise Refused(f"{where} is not an http:// or https:// URL with a host; give the server's full URL, such as "
                      "http://127.0.0.1:8000/v1")
    if "@" in parts.netloc:  # urllib would take user:password@host for a host name
        raise Refused(f"{where}: a user name or password in the URL is not sent; give the credential another way "
                      "(a judge's key: its variable, --judge-api-key-env)")
    cap = MAX_REPLY_BYTES if max_bytes is None else int(max_bytes)
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    with _Deadline(timeout) as deadline:
        opener = urllib.request.build_opener(_HTTP(deadline), _HTTPS(deadline),
                                             _Redirects(carries_credentials(url, headers)))
        try:
            try:
                resp = opener.open(req, timeout=deadline.left())
            except urllib.error.HTTPError as exc:  # any status is the caller's to judge: read its body the same way
                resp = exc
            if resp.fp is None:  # an HTTPError without a body
                reply = Reply(resp.code, resp.headers, b"", url)
            else:
                with resp:
                    reply = Reply(resp.status, resp.headers, _read(resp, cap, where), getattr(resp, "url", None) or url)
        except (TimeoutError, socket.timeout):
            raise TimedOut(f"{where} sent no complete reply within {timeout:g} s") from None
        except urllib.error.URLError as exc:
            if deadline.expired or isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise TimedOut(f"{where} sent no complete reply within {timeout:g} s") from None
            reason = redact.text(str(exc.reason))
            raise Unreachable(f"cannot reach {where} ({reason})", reason) from None
        except (OSError, http.client.HTTPException) as exc:  # reset, closed mid-reply (or by the deadline)
            if deadline.expired:
                raise TimedOut(f"{where} sent no complete reply within {timeout:g} s") from None
            reason = redact.text(f"{type(exc).__name__}: {exc}")
            raise Unreachable(f"cannot reach {where} ({reason})", reason) from None
        if deadline.expired:  # the watchdog's shutdown can look like a clean end of the body
            raise TimedOut(f"{where} sent no complete reply within {timeout:g} s")
    return reply
