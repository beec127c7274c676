"""Reading queued emails back in job board tests."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser


def parsed_text(raw: bytes) -> tuple[str, str]:
    """(Subject, plain-text body) of a stored message."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    return str(message["Subject"]), message.get_body(("plain",)).get_content()
