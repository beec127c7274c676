"""Reviewer accounts: create, list, disable, and check a password.

Passwords are hashed with Argon2id (argon2-cffi's defaults follow RFC 9106's
recommendations); a hash made with older parameters is upgraded on the next
successful login.  An unknown email still costs one hash verification, so the
time a login takes does not tell an attacker which addresses exist.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func
from sqlmodel import Session, select

from mailbot.models import Reviewer, ReviewerRole, utcnow

MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A request about accounts that cannot be honoured (worded for the user)."""


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher().hash("not a real password, only here to spend the same time")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def add_reviewer(session: Session, email: str, *, name: str, password: str,
                 credential: str = "", role: str = ReviewerRole.REVIEWER) -> Reviewer:
    """Create an active account; raises :class:`AccountError` on bad input or
    an email already in use."""
    email = normalize_email(email)
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise AccountError(f"{email!r} is not an email address")
    if role not in {r.value for r in ReviewerRole}:
        raise AccountError(f"role must be one of {', '.join(r.value for r in ReviewerRole)}, not {role!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not name.strip():
        raise AccountError("a display name is required")
    if find(session, email) is not None:
        raise AccountError(f"an account for {email} already exists")
    reviewer = Reviewer(email=email, name=name.strip(), credential=credential.strip(), role=role,
                        password_hash=hasher().hash(password))
    session.add(reviewer)
    session.flush()
    return reviewer


def find(session: Session, email: str) -> Reviewer | None:
    return session.exec(select(Reviewer).where(func.lower(Reviewer.email) == normalize_email(email))).first()


def list_reviewers(session: Session, *, include_disabled: bool = True) -> list[Reviewer]:
    query = select(Reviewer).order_by(Reviewer.name, Reviewer.id)
    if not include_disabled:
        query = query.where(Reviewer.active.is_(True))
    return list(session.exec(query).all())


def set_active(session: Session, email: str, active: bool) -> Reviewer:
    """Disable (or re-enable) an account; a disabled reviewer's sessions stop
    working on their next request because every request reloads the account."""
    reviewer = find(session, email)
    if reviewer is None:
        raise AccountError(f"no account for {normalize_email(email)}")
    reviewer.active = active
    session.add(reviewer)
    return reviewer


def disable(session: Session, email: str) -> Reviewer:
    return set_active(session, email, False)


def set_password(session: Session, email: str, password: str) -> Reviewer:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    reviewer = find(session, email)
    if reviewer is None:
        raise AccountError(f"no account for {normalize_email(email)}")
    reviewer.password_hash = hasher().hash(password)
    session.add(reviewer)
    return reviewer


def authenticate(session: Session, email: str, password: str) -> Reviewer | None:
    """The active reviewer with this email and password, or ``None``.
    Records the login time and upgrades an outdated hash."""
    reviewer = find(session, email)
    if reviewer is None or not reviewer.active or not reviewer.password_hash:
        _spend_time(password)
        return None
    try:
        hasher().verify(reviewer.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher().check_needs_rehash(reviewer.password_hash):
        reviewer.password_hash = hasher().hash(password)
    reviewer.last_login_at = utcnow()
    session.add(reviewer)
    return reviewer


def _spend_time(password: str) -> None:
    try:
        hasher().verify(_dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        pass
