"""What of a sender's own words an automatic reply may repeat back.

An automatic reply (an acknowledgement, a command's answer) goes to whatever
address the From / Reply-To header holds, which anyone can forge.  Repeating
the sender's name or subject there lets a spammer use us to deliver their
text to a third party ("backscatter" / reflection).  So, unless our own MTA
verified the sender (``Authentication-Results`` from
``guards.trusted_authserv_id`` with DMARC, DKIM or SPF passing, recorded by
the router as the ``sender_verified`` mark):

- the display name is never repeated;
- the subject is repeated only when it is inert: short, one line, and with
  nothing a reader could act on -- no link, domain name, e-mail address,
  phone number or long digit run (codes such as 99213 or E11.22 are fine);
  otherwise a neutral subject is used.
"""

from __future__ import annotations

import re

MAX_INERT_SUBJECT = 80

# Anything that could carry a spammer's payload to a reader.
_ACTIONABLE = re.compile(
    r"(https?://|www\.|\w@\w|"                        # links, addresses
    r"\b[\w-]+\.(com|net|org|info|biz|io|co|ru|cn|xyz|top|club|online|site|shop|[a-z]{2})\b|"  # domain names
    r"\+\d[\d\s().-]{7,}\d|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b|\d{9,}|"  # phone numbers
    r"[$€£¥₿]|bitcoin|crypto|viagra|casino|loan|password|verify your|click)",
    re.I,
)


def inert_subject(subject: str) -> str:
    """``subject`` when it is safe to repeat to an unverified address, else ""."""
    subject = " ".join((subject or "").split())
    if not subject or len(subject) > MAX_INERT_SUBJECT or _ACTIONABLE.search(subject):
        return ""
    return subject


def reflected(name: str, subject: str, verified: bool) -> tuple[str, str]:
    """``(name, subject)`` an automatic reply may repeat: both for a verified
    sender; for anyone else no name, and the subject only if inert."""
    if verified:
        return name, subject
    return "", inert_subject(subject)
