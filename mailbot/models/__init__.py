"""SQLModel tables.  Importing this package registers every table on
``SQLModel.metadata`` (Alembic and the tests rely on that).

One module per part of the domain:

- ``mail``: inbound and outbound messages, attachments, sender counters,
  bounces, quarantine;
- ``consultation``: consultations (threads), drafts, audit events;
- ``people``: reviewer accounts;
- ``codes``: the code knowledge base (reference data);
- ``jobs``: the job board, subscribers and their subscriptions.
"""

from mailbot.models.base import utcnow  # noqa: F401
from mailbot.models.mail import (  # noqa: F401
    Attachment,
    BounceEvent,
    InboundMessage,
    InboundRow,
    InboundStatus,
    OutboundMessage,
    OutboundState,
    QuarantineItem,
    SenderDay,
)
from mailbot.models.consultation import (  # noqa: F401
    AuditEvent,
    Consultation,
    ConsultationNote,
    ConsultationState,
    Draft,
    Macro,
)
from mailbot.models.people import Reviewer, ReviewerRole, ReviewerSession  # noqa: F401

# Parts added by later work register themselves here.
from mailbot.models import codes as _codes  # noqa: F401,E402
from mailbot.models import jobs as _jobs  # noqa: F401,E402
from mailbot.models import imap as _imap  # noqa: F401,E402
from mailbot.models import code_index as _code_index  # noqa: F401,E402
