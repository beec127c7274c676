"""Reading postings from files and feeds into :class:`JobInput` records.

Formats: CSV and JSON (our own column names, with common aliases), RSS/Atom
feeds (feedparser) and HTML pages carrying schema.org ``JobPosting`` JSON-LD
(extruct).  Each reader returns ``(inputs, problems)``: a record that cannot
be used (no title, no employer) is reported by position, never silently
dropped, and never stops the rest of the file.
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

import feedparser
import html2text

from mailbot.jobs import fields

MAX_FETCH_BYTES = 5 * 1024 * 1024


class ImportError_(Exception):  # noqa: N801 - not the builtin
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


def _listify(value: Any) -> str:
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
    if salary_max and not period:
        period = "hour" if salary_max < 500 else "year"
    return JobInput(
        title=title[:300], employer=employer[:300], city=city[:120], state=state, work_mode=mode,
        credentials=fields.credentials_in(_listify(_pick(record, "credentials"))),
        specialty=str(_pick(record, "specialty") or "")[:200],
        experience=str(_pick(record, "experience") or "")[:200],
        salary_min=salary_min, salary_max=salary_max, salary_period=period,
        apply_url=str(_pick(record, "apply_url") or "").strip(),
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
        raise ImportError_(f"{name}: not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("jobs", [data])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ImportError_(f"{name}: expected a list of job objects (or {{\"jobs\": [...]}})")
    return _records(data, source="json", name=name)


def _text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.ignore_images = True
    converter.body_width = 0
    return converter.handle(html or "").strip()


_TITLE_PLACE = re.compile(r"^(?P<title>.*?)\s*(?:[-\u2013|@]\s*(?P<employer>[^()]+?))?\s*(?:\((?P<place>[^)]*)\))?\s*$")


def read_feed(data: bytes | str, name: str = "feed") -> tuple[list[JobInput], list[str]]:
    """RSS or Atom: one entry per posting.  Titles such as
    ``"Remote CPC Coder - Acme Health (Austin, TX)"`` give employer and place
    when the entry has no author."""
    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        raise ImportError_(f"{name}: not an RSS/Atom feed ({parsed.get('bozo_exception')})")
    feed_title = parsed.feed.get("title", "")
    inputs, problems = [], []
    for number, entry in enumerate(parsed.entries, start=1):
        m = _TITLE_PLACE.match(entry.get("title", "").strip())
        title = (m.group("title") if m else entry.get("title", "")).strip()
        employer = (entry.get("author") or (m.group("employer") if m else "") or feed_title or "").strip()
        place = (m.group("place") if m else "") or ""
        summary = _text(entry.get("summary", ""))
        tags = " ".join(t.get("term", "") for t in entry.get("tags", []))
        record = {
            "title": title, "employer": employer, "location": place,
            "work_mode": fields.work_mode(f"{entry.get('title', '')} {tags} {place} {summary}", ""),
            "credentials": fields.credentials_in(f"{entry.get('title', '')} {tags} {summary}"),
            "specialty": tags, "apply_url": entry.get("link", ""), "description": summary,
            "posted_at": entry.get("published_parsed") or entry.get("updated_parsed"),
            "salary": _salary_text(summary),
        }
        try:
            inputs.append(from_record(record, source="feed", source_ref=entry.get("id") or entry.get("link") or f"{name}#{number}"))
        except ValueError as exc:
            problems.append(f"{name} entry {number}: {exc}")
    return inputs, problems


def _salary_text(text: str) -> str:
    m = re.search(r"\$\s?\d[\d,.]*\s*[kK]?(?:\s*(?:-|to|\u2013)\s*\$?\s?\d[\d,.]*\s*[kK]?)?(?:\s*(?:/\s*h(?:ou)?r|per hour|hourly|an hour))?", text or "")
    return m.group(0) if m else ""


def read_jsonld(html: str, base_url: str = "", name: str = "page") -> tuple[list[JobInput], list[str]]:
    """schema.org ``JobPosting`` objects embedded as JSON-LD in an HTML page."""
    import extruct

    data = extruct.extract(html, base_url=base_url or None, syntaxes=["json-ld"], uniform=True)
    postings = []
    for item in data.get("json-ld", []):
        graph = item.get("@graph", [item]) if isinstance(item, dict) else []
        postings.extend(g for g in graph if isinstance(g, dict) and "JobPosting" in _types(g))
    if not postings:
        raise ImportError_(f"{name}: no schema.org JobPosting found")
    inputs, problems = [], []
    for number, posting in enumerate(postings, start=1):
        try:
            inputs.append(_from_jobposting(posting, name, number))
        except (ValueError, TypeError) as exc:
            problems.append(f"{name} JobPosting {number}: {exc}")
    return inputs, problems


def _types(obj: dict[str, Any]) -> list[str]:
    t = obj.get("@type", [])
    return t if isinstance(t, list) else [t]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _from_jobposting(p: dict[str, Any], name: str, number: int) -> JobInput:
    org = _first(p.get("hiringOrganization")) or {}
    place = _first(p.get("jobLocation")) or {}
    address = (place.get("address") if isinstance(place, dict) else None) or {}
    if isinstance(address, str):
        address = {"addressLocality": address}
    salary = _first(p.get("baseSalary")) or {}
    value = salary.get("value", {}) if isinstance(salary, dict) else {}
    if not isinstance(value, dict):
        value = {"value": value}
    unit = str(value.get("unitText", "")).upper()
    mode = "remote" if "TELECOMMUTE" in str(p.get("jobLocationType", "")).upper() else ""
    description = _text(str(p.get("description", "")))
    quals = " ".join(str(p.get(k, "")) for k in ("qualifications", "educationRequirements", "skills", "title"))
    record = {
        "title": p.get("title", ""), "employer": org.get("name", "") if isinstance(org, dict) else str(org),
        "city": address.get("addressLocality", ""), "state": address.get("addressRegion", ""),
        "work_mode": mode or fields.work_mode(f"{p.get('title', '')} {p.get('employmentType', '')}", ""),
        "credentials": fields.credentials_in(f"{quals} {description}"),
        "specialty": _listify(p.get("occupationalCategory", "")) if not isinstance(p.get("occupationalCategory"), dict) else "",
        "experience": _experience(p.get("experienceRequirements")),
        "salary_min": value.get("minValue", value.get("value")), "salary_max": value.get("maxValue", value.get("value")),
        "apply_url": p.get("url", "") or (p.get("directApply") if isinstance(p.get("directApply"), str) else ""),
        "description": description, "posted_at": p.get("datePosted"), "expires_at": p.get("validThrough"),
    }
    job = from_record(record, source="jsonld", source_ref=str(_identifier(p) or f"{name}#{number}"))
    if unit:
        job.salary_period = "hour" if unit == "HOUR" else "year"
    return job


def _identifier(p: dict[str, Any]) -> str:
    ident = p.get("identifier")
    if isinstance(ident, dict):
        return str(ident.get("value", ""))
    return str(ident or "")


def _experience(value: Any) -> str:
    if isinstance(value, dict):
        months = value.get("monthsOfExperience")
        return f"{int(float(months)) // 12}+ years" if months else str(value.get("description", ""))
    return str(value or "")


def fetch(source: str) -> tuple[bytes, str]:
    """Read a file path or an http(s) URL; returns ``(content, name)``."""
    if re.match(r"^https?://", source, re.I):
        request = urllib.request.Request(source, headers={"User-Agent": "mailbot-jobs/1 (+feed import)"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) only, checked above
            return response.read(MAX_FETCH_BYTES), source
    path = Path(source)
    if not path.is_file():
        raise ImportError_(f"{source}: no such file")
    return path.read_bytes(), path.name


def read_file(source: str) -> tuple[list[JobInput], list[str]]:
    """``mailbot jobs import FILE``: CSV or JSON by extension (or content)."""
    content, name = fetch(source)
    text = content.decode("utf-8-sig")
    if name.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        return read_json(text, name)
    return read_csv(text, name)


def read_feed_or_page(source: str) -> tuple[list[JobInput], list[str]]:
    """``mailbot jobs import-feed URL|FILE``: RSS/Atom, or HTML with JSON-LD."""
    content, name = fetch(source)
    head = content[:2048].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"application/ld+json" in content[:200_000]:
        return read_jsonld(content.decode("utf-8", errors="replace"), base_url=source if "://" in source else "", name=name)
    return read_feed(content, name)
