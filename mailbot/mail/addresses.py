"""Our own addresses: which recipients we accept and what each one means.

A service address is ``<local>[+tag]@<domain>`` where ``local`` is one of the
configured service names (``ask``, ``lookup``, ``jobs``) or ``bounces`` (the
envelope sender of everything we send, see ``services.delivery``), and
``domain`` is the service domain or one of ``service.extra_domains``.  The
SMTP listener refuses every other recipient at RCPT (no open relay); the
router uses :attr:`ServiceAddress.kind` to pick the default command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from mailbot.config import Settings

BOUNCES = "bounces"


@dataclass(frozen=True)
class ServiceAddress:
    kind: str       # "ask" | "lookup" | "jobs" | "bounces"
    local: str      # the configured local part, e.g. "ask"
    tag: str        # what followed "+", or ""
    domain: str

    @property
    def address(self) -> str:
        return f"{self.local}{'+' + self.tag if self.tag else ''}@{self.domain}"


def service_locals(settings: Settings) -> dict[str, str]:
    """Configured local part (lower case) -> kind."""
    svc = settings.service
    return {
        svc.ask_address.lower(): "ask",
        svc.lookup_address.lower(): "lookup",
        svc.jobs_address.lower(): "jobs",
        BOUNCES: "bounces",
    }


def classify(settings: Settings, address: str) -> ServiceAddress | None:
    """The service address ``address`` names, or ``None`` when it is not ours.

    Accepts ``<addr>`` and ``Name <addr>`` forms; comparison is
    case-insensitive (local parts of our own addresses are ours to define)."""
    addr = parseaddr(address or "")[1] if "<" in (address or "") else (address or "").strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = domain.lower().rstrip(".")
    if domain not in settings.domains:
        return None
    base, _, tag = local.partition("+")
    kind = service_locals(settings).get(base.lower())
    if kind is None:
        return None
    return ServiceAddress(kind=kind, local=base.lower(), tag=tag, domain=domain)


def primary(settings: Settings, recipients: list[str]) -> ServiceAddress | None:
    """The first of ``recipients`` that is a service address other than the
    bounce address, else the bounce address, else ``None``."""
    found = [a for a in (classify(settings, r) for r in recipients) if a is not None]
    for address in found:
        if address.kind != "bounces":
            return address
    return found[0] if found else None


def own_domain(settings: Settings, domain: str) -> bool:
    return domain.lower().rstrip(".") in settings.domains


# -- addresses people give us ------------------------------------------------

# A deliverable addr-spec as we will write it into a To header and an SMTP
# RCPT: printable, no whitespace, no encoded word (the stdlib would decode
# "=?utf-8?q?=0D=0A?=" into a real line break when it writes the header),
# one "@", a dotted domain.  Anything else is not an address we answer.
_ADDR_SPEC = re.compile(r"^[^\s<>()\[\]\\,;:@\"\x00-\x1f\x7f]{1,64}@[A-Za-z0-9\u00a0-\uffff]"
                        r"[A-Za-z0-9.\-\u00a0-\uffff]{0,252}\.[A-Za-z0-9\-\u00a0-\uffff]{2,63}$")


def safe_addr_spec(addr: str) -> bool:
    """True when ``addr`` is a plain ``local@domain`` we may write to."""
    addr = addr or ""
    return "=?" not in addr and "?=" not in addr and ".." not in addr and _ADDR_SPEC.match(addr) is not None
