"""Reading postings from files into :class:`JobInput` records.

Formats here: CSV and JSON (our own column names, with common aliases);
feeds and web pages are in ``mailbot.jobs.feeds``.  Each reader returns
``(inputs, problems)``: a record that cannot be used (no title, no
employer) is reported by position, never silently dropped, and never stops
the rest of the file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mailbot.jobs import fields

MAX_FETCH_BYTES = 5 * 1024 * 1024


class UnreadableSource(Exception):
    """The source as a whole cannot be read (missing file, unknown format)."""


@dataclass
class JobInput:
    title: str
    employer: str
    city: str = ""
    state: str = ""
    work_mode: str = "onsite"
    credentials: list[str] = field(default_factory=list)
    specialty: str = ""
    experience: str = ""
    salary_min: int | None = None
    salary_max: int | None = None
    salary_period: str = ""
    apply_url: str = ""
    apply_email: str = ""
    description: str = ""
    posted_at: datetime | None = None
    expires_at: datetime | None = None
    source: str = "admin"
    source_ref: str = ""


# Column aliases: the first one present wins.
_ALIASES = {
    "title": ("title", "job_title", "position"),
    "employer": ("employer", "company", "organization", "hiring_organization"),
    "location": ("location", "job_location"),
    "city": ("city",),
    "state": ("state", "region"),
    "work_mode": ("work_mode", "remote", "workplace", "work_type", "type"),
    "credentials": ("credentials", "required_credentials", "certifications"),
    "specialty": ("specialty", "speciality", "category"),
    "experience": ("experience", "experience_required"),
    "salary": ("salary", "pay", "compensation"),
    "salary_min": ("salary_min", "min_salary"),
    "salary_max": ("salary_max", "max_salary"),
    "apply_url": ("apply_url", "url", "link", "apply_link"),
    "apply_email": ("apply_email", "email", "contact_email"),
    "description": ("description", "summary", "details"),
    "posted_at": ("posted_at", "posted", "date_posted", "posted_date"),
    "expires_at": ("expires_at", "expires", "valid_through", "expiry", "expiration_date"),
}


def _pick(record: dict[str, Any], key: str) -> Any:
    lowered = {str(k).strip().lower().replace(" ", "_"): v for k, v in record.items()}
    for alias in _ALIASES[key]:
        value = lowered.get(alias)
        if value not in (None, ""):
            return value
    return None


def parse_when(value: Any) -> datetime | None:
    """ISO dates/datetimes (or ``time.struct_time`` from feedparser) -> aware UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if hasattr(value, "tm_year"):
        return datetime(*value[:6], tzinfo=UTC)
    text = str(value).strip().replace("Z", "+00:00")
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%m/%d/%Y")):
        try:
            parsed = parse(text)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def listify(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value or "")


def from_record(record: dict[str, Any], *, source: str, source_ref: str = "") -> JobInput:
    """One CSV row / JSON object -> :class:`JobInput` (raises ValueError when unusable)."""
    title = str(_pick(record, "title") or "").strip()
    employer = str(_pick(record, "employer") or "").strip()
    if not title or not employer:
        raise ValueError("a posting needs a title and an employer")
    location = str(_pick(record, "location") or "")
    city, state = fields.split_location(location)
    city = str(_pick(record, "city") or city).strip()
    state = fields.state_code(str(_pick(record, "state") or "")) or state
    mode_text = _pick(record, "work_mode")
    if isinstance(mode_text, bool):
        mode_text = "remote" if mode_text else ""
    elif str(mode_text).strip().lower() in ("yes", "true", "1"):
        mode_text = "remote"
    mode = fields.work_mode(f"{mode_text or ''} {location}")
    salary_min, salary_max, period = fields.salary_range(str(_pick(record, "salary") or ""))
    if _pick(record, "salary_min") is not None:
        salary_min = int(float(_pick(record, "salary_min")))
    if _pick(record, "salary_max") is not None:
        salary_max = int(float(_pick(record, "salary_max")))
    apply_url = str(_pick(record, "apply_url") or "").strip()
    if apply_url and not re.match(r"^https?://[^\s/]+", apply_url, re.I):
        # Shown as a link in every digest: nothing but a web address.
        raise ValueError(f"the apply link {apply_url[:80]!r} is not an http(s) address")
    if salary_max and not period:
        period = "hour" if salary_max < 500 else "year"
    return JobInput(
        title=title[:300], employer=employer[:300], city=city[:120], state=state, work_mode=mode,
        credentials=fields.credentials_in(listify(_pick(record, "credentials"))),
        specialty=str(_pick(record, "specialty") or "")[:200],
        experience=str(_pick(record, "experience") or "")[:200],
        salary_min=salary_min, salary_max=salary_max, salary_period=period,
        apply_url=apply_url,
        apply_email=str(_pick(record, "apply_email") or "").strip(),
        description=str(_pick(record, "description") or ""),
        posted_at=parse_when(_pick(record, "posted_at")), expires_at=parse_when(_pick(record, "expires_at")),
        source=source, source_ref=source_ref,
    )


def _records(records: list[dict[str, Any]], *, source: str, name: str) -> tuple[list[JobInput], list[str]]:
    inputs, problems = [], []
    for number, record in enumerate(records, start=1):
        try:
            inputs.append(from_record(record, source=source, source_ref=f"{name}#{number}"))
        except (ValueError, TypeError) as exc:
            problems.append(f"{name} record {number}: {exc}")
    return inputs, problems


def read_csv(text: str, name: str = "csv") -> tuple[list[JobInput], list[str]]:
    return _records(list(csv.DictReader(io.StringIO(text))), source="csv", name=name)


def read_json(text: str, name: str = "json") -> tuple[list[JobInput], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableSource(f"{name}: not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("jobs", [data])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UnreadableSource(f"{name}: expected a list of job objects (or {{\"jobs\": [...]}})")
    return _records(data, source="json", name=name)


def fetch(source: str) -> tuple[bytes, str]:
    """Read a file path or an http(s) URL; returns ``(content, name)``."""
    if re.match(r"^https?://", source, re.I):
        request = urllib.request.Request(source, headers={"User-Agent": "mailbot-jobs/1 (+feed import)"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) only, checked above
            return response.read(MAX_FETCH_BYTES), source
    path = Path(source)
    if not path.is_file():
        raise UnreadableSource(f"{source}: no such file")
    return path.read_bytes(), path.name


def read_file(source: str) -> tuple[list[JobInput], list[str]]:
    """``mailbot jobs import FILE``: CSV or JSON by extension (or content)."""
    content, name = fetch(source)
    text = content.decode("utf-8-sig")
    if name.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        return read_json(text, name)
    return read_csv(text, name)
