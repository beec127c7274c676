"""Where the IMAP poller is in each mailbox folder.

One row per (account, folder): the folder's UIDVALIDITY and the highest UID
handed to intake.  A different UIDVALIDITY means the server renumbered the
folder; the poller then rescans it and skips messages already stored
(matched by Message-ID).  UIDs are 32-bit unsigned, hence BigInteger.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailbot.models.base import utcnow


class ImapFolderState(SQLModel, table=True):
    __tablename__ = "imap_folder_state"
    __table_args__ = (UniqueConstraint("account", "folder"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=512)              # user@host:port
    folder: str = Field(max_length=512)
    uidvalidity: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    updated_at: datetime = Field(default_factory=utcnow)
