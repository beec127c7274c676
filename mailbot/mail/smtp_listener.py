"""The SMTP (or LMTP) listener: refuse early, store durably, answer 250 last.

aiosmtpd runs on an event loop in its own thread.  The handler is thin
(compare Healthchecks' ``smtpd`` and Zulip's email mirror):

- ``RCPT``: only our service addresses (and ``+tag`` forms, and the bounce
  address) are accepted; anything else gets 550 -- we are never a relay;
- ``DATA``: aiosmtpd enforces the size limit (552) and line length (500)
  and, since 1.4.6, accepts only ``<CRLF>.<CRLF>`` as the end of data (SMTP
  smuggling).  NUL bytes are refused with 554, and so is a header block
  over one of ``mail.limits``' bounds (a cheap linear scan; the parser,
  which is superlinear on such input, never sees it).  The raw bytes and the
  envelope go to intake's writer thread (:class:`mailbot.mail.group_commit.GroupCommit`,
  never the loop), which commits concurrent arrivals together; only when
  the commit holding this message is done do we answer 250.  Any error
  there answers 451 so the sending server keeps the message and retries.

Optional: STARTTLS (``smtp.tls_cert``/``tls_key``), AUTH (``smtp.auth_username``
with the password from ``MAILBOT_SMTP__AUTH_PASSWORD``; when set, AUTH is
required), and LMTP (``smtp.lmtp``) for running behind Postfix, where each
recipient gets its own reply line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import ssl
import threading
from collections.abc import Callable

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailbot.context import Context
from mailbot.mail import limits
from mailbot.mail.addresses import classify
from mailbot.mail.group_commit import GroupCommit
from mailbot.mail.intake import Arrival
from mailbot.sockets import tcp_listener

log = logging.getLogger(__name__)

# Replies, named (RFC 5321 / RFC 3463 enhanced codes).
RECIPIENT_OK = "250 2.1.5 OK"
NOT_OURS = "550 5.1.1 <{}>: no such mailbox here; this server does not relay"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
NUL_BYTES = "554 5.6.0 Message contains NUL bytes"
NO_RECIPIENTS = "503 5.5.1 No valid recipients"
TRY_LATER = "451 4.3.0 Temporary failure storing the message; please try again later"
STORED = "250 2.0.0 OK: stored as #{}"

OnStored = Callable[[int], None]


class Handler:
    """aiosmtpd handler: the protocol edge only; storing is intake's writer."""

    def __init__(self, ctx: Context, writer: GroupCommit, lmtp: bool) -> None:
        self.ctx = ctx
        self.writer = writer
        self.lmtp = lmtp

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if classify(self.ctx.settings, address) is None:
            return NOT_OURS.format(address.replace("\r", "").replace("\n", "")[:200])
        if len(envelope.rcpt_tos) >= self.ctx.settings.smtp.max_recipients:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not envelope.rcpt_tos:
            return NO_RECIPIENTS
        if b"\x00" in raw:
            return self._each(envelope, NUL_BYTES)
        over = limits.check(raw)
        if over is not None:
            return self._each(envelope, limits.REFUSED.format(over))
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        arrival = Arrival(raw, source="lmtp" if self.lmtp else "smtp", envelope_from=_sender(envelope.mail_from),
                          envelope_to=list(envelope.rcpt_tos), peer=peer)
        try:
            inbound_id = await self.writer.store(arrival)
        except Exception:
            log.exception("could not store a message from %s; answered 451", peer)
            return self._each(envelope, TRY_LATER)
        return self._each(envelope, STORED.format(inbound_id))

    def _each(self, envelope: Envelope, status: str) -> str:
        """LMTP answers once per recipient; SMTP once."""
        if self.lmtp:
            return "\r\n".join([status] * len(envelope.rcpt_tos))
        return status


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.username) and hmac.compare_digest(auth_data.password, self.password)
        return AuthResult(success=ok, handled=False)


class _Protocol:
    """What our SMTP and LMTP servers change in aiosmtpd's (a mixin).

    - The line length limit is set before ``__init__`` builds the stream
      reader from it.
    - ``MAIL FROM:<a@b>`` and ``RCPT TO:<a@b>``: aiosmtpd parses every
      address with the stdlib's RFC 5322 parser (~50 us a call, twice per
      message: a tenth of the listener's CPU per message, issue 16).  The
      form real mailers send -- a dot-atom local part and a domain of plain
      labels in angle brackets -- is read with one regex instead, giving what
      that parser gives for it (``tests/mail/test_smtp_addresses.py`` checks
      both against each other); anything else (quoted local parts, address
      literals, source routes, comments, SMTPUTF8, ``<>``) still goes to
      aiosmtpd's parser.
    """

    def __init__(self, line_length_limit: int, *args, **kwargs) -> None:
        self.line_length_limit = line_length_limit
        super().__init__(*args, **kwargs)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_ADDRESS.match(arg)
        if match is None:
            return super()._getaddr(arg)
        rest = arg[match.end():]
        if rest[:1] in (" ", "\t"):      # the parser drops the white space after '>' ...
            rest = rest.lstrip()
        if rest[:1] == "(" or "=?" in match.group(1):   # ... and comments; encoded words are its business
            return super()._getaddr(arg)
        address = match.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest


# RFC 5322 atext, dot-atom local part; domain labels of letters, digits and hyphens.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class _SizedSMTP(_Protocol, SMTP):
    """aiosmtpd's SMTP with :class:`_Protocol`'s changes."""


class _SizedLMTP(_Protocol, LMTP):
    """aiosmtpd's LMTP with :class:`_Protocol`'s changes."""


class SmtpListener:
    """The listener, on its own event-loop thread.  ``port`` is the bound
    port (useful with ``smtp.port = 0``)."""

    def __init__(self, ctx: Context, on_stored: OnStored | None = None) -> None:
        self.ctx = ctx
        cfg = ctx.settings.smtp
        # Stores (and then pokes the router) on its own thread, never the loop.
        self.writer = GroupCommit(ctx.db, on_stored=on_stored)
        ctx.health.register("intake_writer", self.writer.problem)
        self.handler = Handler(ctx, self.writer, lmtp=cfg.lmtp)
        self.loop = asyncio.new_event_loop()
        self.port: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tls = _tls_context(cfg.tls_cert, cfg.tls_key)

    def _factory(self) -> SMTP:
        cfg = self.ctx.settings.smtp
        cls = _SizedLMTP if cfg.lmtp else _SizedSMTP
        password = cfg.auth_password.get_secret_value() if cfg.auth_password else ""
        # RFC 5321 allows 1000; real mailers (Outlook) send longer lines, so it
        # is configurable -- and it must be known before aiosmtpd's __init__,
        # which sizes its stream reader from it (setting it afterwards did
        # nothing: issue 17, point 5).
        return cls(
            cfg.max_line_length,
            self.handler, hostname=cfg.hostname or self.ctx.settings.service.domain,
            data_size_limit=cfg.max_message_size, enable_SMTPUTF8=True, decode_data=False,
            tls_context=self._tls, require_starttls=bool(self._tls and cfg.require_starttls),
            authenticator=_Authenticator(cfg.auth_username, password) if cfg.auth_username else None,
            auth_required=bool(cfg.auth_username), auth_require_tls=self._tls is not None,
            auth_exclude_mechanism=None if cfg.auth_username else ["LOGIN", "PLAIN"],
            timeout=120, loop=self.loop,
        )

    def start(self) -> None:
        cfg = self.ctx.settings.smtp
        # aiosmtpd logs every SMTP command at INFO (addresses included): noise
        # and CPU on a busy listener.  Our own log says what was stored.
        if logging.getLogger("mail.log").getEffectiveLevel() < logging.WARNING:
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        sock = tcp_listener(cfg.host, cfg.port)     # TCP_NODELAY on every session
        sock.listen(128)
        self.port = sock.getsockname()[1]
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self._server = self.loop.run_until_complete(self.loop.create_server(self._factory, sock=sock))
            except BaseException as exc:  # pragma: no cover - bind/listen problems surface in start()
                failure.append(exc)
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="mailbot-smtp", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        except Exception:  # pragma: no cover - best effort at shutdown
            log.exception("SMTP listener shutdown")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.writer.close()
        self.ctx.health.unregister("intake_writer")


def _sender(mail_from: str | None) -> str:
    """The envelope sender as stored: ``<>`` for the null sender (bounces)."""
    value = (mail_from or "").strip()
    return value if value not in ("", "<>") else "<>"


def _tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key or None)
    return context
