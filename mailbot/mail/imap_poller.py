"""The IMAP poller: a mailbox as the other way in, through the same intake.

One thread, one connection.  Each pass ("catch-up") selects the folder,
compares its UIDVALIDITY with the stored one, fetches every UID above the
last one handled with ``BODY.PEEK[]`` (so nothing is marked read by the
fetch itself), hands each message to :func:`mailbot.mail.intake.accept`,
and only after that commit moves it to the processed folder (or, without
the MOVE extension, flags it ``$MailbotProcessed``) and records the UID.

A crash between intake and the move leaves the message in the folder; the
next pass sees it again and skips it because an inbound row with the same
Message-ID (or the same bytes) exists.  The same check makes a UIDVALIDITY
change (the server renumbered the folder) a safe full rescan.

A message larger than ``smtp.max_message_size`` is not fetched: it stays
in the folder, flagged ``$MailbotTooLarge``, with a quarantine row saying
where it is.

Between passes the poller waits in IDLE, renewed every ``imap.idle_seconds``
(at most 10 minutes, well inside the 29-minute limit of RFC 2177), or polls
when the server lacks IDLE.  Connection errors end the connection;
reconnection backs off exponentially up to ``imap.max_backoff_seconds`` and
always starts with a catch-up.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.parser import BytesHeaderParser

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import or_
from sqlmodel import select

from mailbot.context import Context
from mailbot.mail.intake import accept, header_message_id
from mailbot.mail.limits import header_block
from mailbot.mail.mailpolicy import POLICY
from mailbot.models import InboundMessage, utcnow
from mailbot.models.imap import ImapFolderState
from mailbot.services.quarantine import quarantine

log = logging.getLogger(__name__)

PROCESSED_FLAG = b"$MailbotProcessed"
TOO_LARGE_FLAG = b"$MailbotTooLarge"
FETCH_BATCH = 25
POLL_SECONDS = 30           # without IDLE
RECOVERABLE = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, EOFError)


class ImapPoller(threading.Thread):
    """Polls ``imap.folder`` into intake; ``on_stored(inbound_id)`` after each."""

    def __init__(self, ctx: Context, on_stored: Callable[[int], None] | None = None) -> None:
        super().__init__(name="mailbot-imap", daemon=True)
        self.ctx = ctx
        self.cfg = ctx.settings.imap
        self.on_stored = on_stored
        self.stopping = threading.Event()
        self.account = f"{self.cfg.username}@{self.cfg.host}:{self.cfg.port}"
        self.passes = 0                  # catch-up passes completed (tests and metrics)
        self.connects = 0
        self.client: IMAPClient | None = None

    # -- thread --------------------------------------------------------------

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                self._session()
                backoff = 1.0
            except RECOVERABLE as exc:
                log.warning("IMAP %s: %s; reconnecting in %.0f s", self.account, exc, backoff)
                if self.stopping.wait(backoff):
                    break
                backoff = min(backoff * 2, float(self.cfg.max_backoff_seconds))
            except Exception:
                log.exception("IMAP poller error; reconnecting in %.0f s", backoff)
                if self.stopping.wait(backoff):
                    break
                backoff = min(backoff * 2, float(self.cfg.max_backoff_seconds))

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)

    def _session(self) -> None:
        client = self.connect()
        self.client = client
        try:
            self.connects += 1
            while not self.stopping.is_set():
                self.catch_up(client)
                self._wait(client)
        finally:
            self.client = None
            try:
                client.logout()
            except Exception:
                pass

    def connect(self) -> IMAPClient:
        cfg = self.cfg
        client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.ssl, timeout=60)
        client.login(cfg.username, cfg.password.get_secret_value() if cfg.password else "")
        if cfg.processed_folder and client.has_capability("MOVE") and not client.folder_exists(cfg.processed_folder):
            client.create_folder(cfg.processed_folder)
        return client

    def _wait(self, client: IMAPClient) -> None:
        """Until the server reports something, the IDLE period ends, or stop."""
        if not client.has_capability("IDLE"):
            self.stopping.wait(POLL_SECONDS)
            return
        client.idle()
        try:
            deadline = time.monotonic() + self.cfg.idle_seconds
            empty_wakeups = 0
            while not self.stopping.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                if client.idle_check(timeout=1):
                    break
                # imapclient swallows EOF: a readable socket with nothing to
                # read, again and again, is a closed connection.
                empty_wakeups = empty_wakeups + 1 if time.monotonic() - started < 0.2 else 0
                if empty_wakeups >= 3:
                    raise ConnectionResetError("IMAP connection closed during IDLE")
        finally:
            try:
                client.idle_done()
            except RECOVERABLE:
                pass

    # -- one pass --------------------------------------------------------------

    def catch_up(self, client: IMAPClient) -> int:
        """Hand every new message to intake; returns how many were stored."""
        folder = self.cfg.folder
        info = client.select_folder(folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        last_uid = self._position(folder, uidvalidity)
        # Our flags are excluded too, so a lost position (new database, flag
        # mode) does not bring back what was handed over already.
        criteria = ["UID", f"{last_uid + 1}:*", "UNKEYWORD", PROCESSED_FLAG.decode(),
                    "UNKEYWORD", TOO_LARGE_FLAG.decode()]
        uids = sorted(u for u in client.search(criteria) if u > last_uid)
        stored = 0
        limit = self.ctx.settings.smtp.max_message_size
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start:start + FETCH_BATCH]
            sizes = client.fetch(batch, ["RFC822.SIZE"])
            small = [u for u in batch if sizes.get(u, {}).get(b"RFC822.SIZE", 0) <= limit]
            data = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            for uid in batch:
                if uid not in small and uid in sizes:
                    self._too_large(client, folder, uidvalidity, uid, sizes[uid][b"RFC822.SIZE"], limit)
                    continue
                raw = data.get(uid, {}).get(b"BODY[]")
                if raw is None:
                    continue  # expunged meanwhile
                inbound_id = self._store(raw, f"{folder}/{uidvalidity}/{uid}")
                self._done(client, uid)
                self._advance(folder, uid)
                if inbound_id is not None:
                    stored += 1
                    if self.on_stored is not None:
                        try:
                            self.on_stored(inbound_id)
                        except Exception:
                            log.exception("stored inbound %s but could not enqueue it", inbound_id)
        self.passes += 1
        return stored

    def _store(self, raw: bytes, peer: str) -> int | None:
        """Intake, unless this message is already stored (crash, rescan)."""
        import hashlib

        message_id = header_message_id(raw)
        digest = hashlib.sha256(raw).hexdigest()
        with self.ctx.db.read() as session:
            same = [InboundMessage.raw_sha256 == digest]
            if message_id:
                same.append(InboundMessage.message_id == message_id)
            if session.exec(select(InboundMessage.id).where(or_(*same)).limit(1)).first() is not None:
                log.info("IMAP %s: already stored, skipped", peer)
                return None
        headers = BytesHeaderParser(policy=POLICY).parsebytes(header_block(raw))
        return accept(self.ctx.db, raw, source="imap", envelope_from=_return_path(headers),
                      envelope_to=_delivered_to(headers), peer=peer)

    def _too_large(self, client: IMAPClient, folder: str, uidvalidity: int, uid: int, size: int, limit: int) -> None:
        """Over the size limit the SMTP listener enforces: left in the
        mailbox, flagged, and quarantined (with where to find it) for a human."""
        with self.ctx.db.session() as session:
            quarantine(session, kind="imap", ref_id=None, stage="imap",
                       reason=f"{folder} UID {uid} (UIDVALIDITY {uidvalidity}) is {size} bytes, over "
                              f"smtp.max_message_size {limit}; left in the mailbox, flagged {TOO_LARGE_FLAG.decode()}")
        client.add_flags([uid], [TOO_LARGE_FLAG])
        self._advance(folder, uid)

    def _done(self, client: IMAPClient, uid: int) -> None:
        if self.cfg.processed_folder and client.has_capability("MOVE"):
            client.move([uid], self.cfg.processed_folder)
        else:
            client.add_flags([uid], [PROCESSED_FLAG, b"\\Seen"])

    # -- stored position ---------------------------------------------------------

    def _position(self, folder: str, uidvalidity: int) -> int:
        """The last UID handled in ``folder``; 0 (rescan) when UIDVALIDITY changed."""
        with self.ctx.db.session() as session:
            state = session.exec(select(ImapFolderState).where(
                ImapFolderState.account == self.account, ImapFolderState.folder == folder)).first()
            if state is None:
                state = ImapFolderState(account=self.account, folder=folder, uidvalidity=uidvalidity, last_uid=0)
                session.add(state)
                return 0
            if state.uidvalidity != uidvalidity:
                log.warning("IMAP %s/%s: UIDVALIDITY changed %s -> %s; rescanning (deduplicated by Message-ID)",
                            self.account, folder, state.uidvalidity, uidvalidity)
                state.uidvalidity, state.last_uid, state.updated_at = uidvalidity, 0, utcnow()
                session.add(state)
            return state.last_uid

    def _advance(self, folder: str, uid: int) -> None:
        with self.ctx.db.session() as session:
            state = session.exec(select(ImapFolderState).where(
                ImapFolderState.account == self.account, ImapFolderState.folder == folder)).one()
            if uid > state.last_uid:
                state.last_uid, state.updated_at = uid, utcnow()
                session.add(state)


def _return_path(headers) -> str:
    value = str(headers.get("Return-Path") or "").strip()
    if value in ("<>", ""):
        return value
    return value.strip("<>")


def _delivered_to(headers) -> list[str]:
    for name in ("Delivered-To", "X-Original-To", "Envelope-To"):
        values = [str(v).strip() for v in headers.get_all(name) or [] if "@" in str(v)]
        if values:
            return values[:20]
    return []
