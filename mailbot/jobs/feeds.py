"""Reading postings from RSS/Atom feeds (feedparser) and from HTML pages
carrying schema.org ``JobPosting`` JSON-LD (extruct).

Feed entries rarely have structured fields, so the title, tags and summary
are read for employer, place, work mode, credentials and pay; JSON-LD
postings map field by field.  Both go through
:func:`mailbot.jobs.importers.from_record`, like CSV rows.
"""

from __future__ import annotations

import re
from typing import Any

import feedparser
import html2text

from mailbot.jobs import fields
from mailbot.jobs.importers import JobInput, UnreadableSource, fetch, from_record, listify


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
        raise UnreadableSource(f"{name}: not an RSS/Atom feed ({parsed.get('bozo_exception')})")
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
        raise UnreadableSource(f"{name}: no schema.org JobPosting found")
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
        "specialty": listify(p.get("occupationalCategory", "")) if not isinstance(p.get("occupationalCategory"), dict) else "",
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


def read_feed_or_page(source: str) -> tuple[list[JobInput], list[str]]:
    """``mailbot jobs import-feed URL|FILE``: RSS/Atom, or HTML with JSON-LD."""
    content, name = fetch(source)
    head = content[:2048].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"application/ld+json" in content[:200_000]:
        return read_jsonld(content.decode("utf-8", errors="replace"), base_url=source if "://" in source else "", name=name)
    return read_feed(content, name)
