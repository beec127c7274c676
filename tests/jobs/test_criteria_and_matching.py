"""Plain-language subscription requests, and the matching rules (the bitset
index must agree with the one-job definition)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from mailbot.jobs.criteria import parse_request
from mailbot.jobs.matching import JobIndex, matches


@pytest.mark.parametrize("text, criteria, frequency", [
    ("JOBS remote CPC weekly", {"work_modes": ["remote"], "credentials": ["CPC"]}, "weekly"),
    ("remote CPC jobs in Texas, daily", {"work_modes": ["remote"], "credentials": ["CPC"], "states": ["TX"]}, "daily"),
    ("JOBS hybrid CCS-P risk adjustment in Austin, TX every day",
     {"work_modes": ["hybrid"], "credentials": ["CCS-P"], "states": ["TX"], "cities": ["Austin"],
      "specialties": ["risk adjustment"]}, "daily"),
    ("SUBSCRIBE JOBS REMOTE CPC IN OREGON", {"work_modes": ["remote"], "credentials": ["CPC"], "states": ["OR"]}, "weekly"),
    ("jobs for coders in Portland or Seattle", {"cities": ["Portland", "Seattle"]}, "weekly"),
])
def test_job_requests(text, criteria, frequency):
    request = parse_request(text.removeprefix("SUBSCRIBE "))
    assert request.kind == "jobs" and request.frequency == frequency
    assert {k: v for k, v in request.criteria.items() if v} == criteria


@pytest.mark.parametrize("text, criteria", [
    ("UPDATES E08-E13", {"ranges": [["E08", "E13"]]}),
    ("UPDATES J codes", {"prefixes": ["J"]}),
    ("code updates chapter 4 ICD-10-CM", {"ranges": [["E00", "E89"]], "systems": ["icd10cm"]}),
    ("UPDATES E11.6 and M1A", {"prefixes": ["E116", "M1A"]}),
])
def test_code_update_requests(text, criteria):
    request = parse_request(text)
    assert request.kind == "updates"
    assert {k: v for k, v in request.criteria.items() if v} == criteria


def test_words_not_understood_are_reported():
    assert parse_request("JOBS remote CPC xyzzy daily").ignored == ["xyzzy"]


@dataclass
class FakeJob:  # the matcher only reads these attributes
    title: str
    city: str
    state: str
    work_mode: str
    credentials: list[str] = field(default_factory=list)
    specialty: str = ""


def test_location_rules():
    remote_anywhere = FakeJob("Coder", "", "", "remote")
    remote_tx = FakeJob("Coder", "", "TX", "remote")
    austin = FakeJob("Coder", "Austin", "TX", "onsite")
    dallas = FakeJob("Coder", "Dallas", "TX", "hybrid")
    texas = {"states": ["TX"]}
    ohio = {"states": ["OH"]}
    assert all(matches(j, texas) for j in (remote_anywhere, remote_tx, austin, dallas))
    assert matches(remote_anywhere, ohio) and not matches(remote_tx, ohio) and not matches(austin, ohio)
    assert matches(austin, {"cities": ["austin"], "states": ["TX"]}) and not matches(dallas, {"cities": ["Austin"]})


def test_credentials_rules():
    open_to_all = FakeJob("Coder", "", "", "remote")
    ccs = FakeJob("Coder", "", "", "remote", ["CCS"])
    assert matches(open_to_all, {"credentials": ["CPC"]})
    assert not matches(ccs, {"credentials": ["CPC"]}) and matches(ccs, {"credentials": ["CPC", "CCS"]})


def test_the_index_agrees_with_the_definition_on_random_data():
    rng = random.Random(8)
    states, cities = ["TX", "OH", "CA", ""], ["Austin", "Dayton", "Fresno", ""]
    creds, specs = ["CPC", "CCS", "CRC", "RHIT"], ["inpatient", "outpatient", "risk adjustment", "audit"]
    jobs = [FakeJob(rng.choice(["Coder", "Inpatient Coder", "Coding Auditor"]), rng.choice(cities), rng.choice(states),
                    rng.choice(["remote", "hybrid", "onsite"]), rng.sample(creds, rng.randint(0, 2)),
                    rng.choice(specs + [""])) for _ in range(300)]
    index = JobIndex(jobs)
    for _ in range(400):
        criteria = {
            "work_modes": rng.sample(["remote", "hybrid", "onsite"], rng.randint(0, 2)),
            "states": rng.sample(states[:3], rng.randint(0, 2)), "cities": rng.sample(cities[:3], rng.randint(0, 1)),
            "credentials": rng.sample(creds, rng.randint(0, 2)), "specialties": rng.sample(specs, rng.randint(0, 1)),
        }
        assert index.matching(criteria) == [j for j in jobs if matches(j, criteria)]
