"""Which jobs match a subscription.

:func:`matches` decides for one job and one set of criteria; it is the
definition.  :class:`JobIndex` answers the same question for a whole digest
run: each criterion value maps to a bitset (a Python int) of the jobs that
satisfy it, so a subscription costs a few big-integer ANDs/ORs instead of a
loop over every open job.  The tests check both agree on random data.

Rules (each given criterion must hold; values within one criterion are
alternatives):

- work_modes: the job's mode is one of them;
- location: a remote job with no state matches any place; a remote job tied
  to a state matches when that state was asked for; other jobs must be in
  one of the cities (when cities were given; then also in one of the states,
  when given) or in one of the states;
- credentials: a job that requires none matches; otherwise it must require
  one the subscriber named;
- specialties: one of them appears in the job's specialty or title.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class JobLike(Protocol):
    title: str
    city: str
    state: str
    work_mode: str
    credentials: list[str]
    specialty: str


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9/]+", " ", (text or "").lower()).split())


def _has_specialty(job: JobLike, specialty: str) -> bool:
    return f" {_fold(specialty)} " in f" {_fold(job.specialty)} {_fold(job.title)} "


def matches(job: JobLike, criteria: dict[str, Any]) -> bool:
    modes = criteria.get("work_modes") or []
    if modes and job.work_mode not in modes:
        return False
    states = criteria.get("states") or []
    cities = [_fold(c) for c in criteria.get("cities") or []]
    if states or cities:
        if job.work_mode == "remote":
            if job.state and job.state not in states:
                return False
        elif cities:
            if _fold(job.city) not in cities or (states and job.state not in states):
                return False
        elif job.state not in states:
            return False
    creds = criteria.get("credentials") or []
    if creds and job.credentials and not set(creds) & set(job.credentials):
        return False
    specialties = criteria.get("specialties") or []
    if specialties and not any(_has_specialty(job, s) for s in specialties):
        return False
    return True


class JobIndex:
    """Bitsets over ``jobs`` (kept in the given order: bit ``i`` is ``jobs[i]``)."""

    def __init__(self, jobs: Sequence[JobLike], *, memo: bool = False) -> None:
        self.jobs = list(jobs)
        self.memo = memo
        self.all = (1 << len(self.jobs)) - 1
        self._mode: dict[str, int] = {}
        self._state: dict[str, int] = {}
        self._city: dict[str, int] = {}
        self._cred: dict[str, int] = {}
        self._specialty: dict[str, int] = {}
        self.remote = self.remote_anywhere = self.no_creds = 0
        # Folded once: specialty bits are computed per distinct specialty asked for.
        self._text = [f" {_fold(job.specialty)} {_fold(job.title)} " for job in self.jobs]
        for i, job in enumerate(self.jobs):
            bit = 1 << i
            self._mode[job.work_mode] = self._mode.get(job.work_mode, 0) | bit
            if job.state:
                self._state[job.state] = self._state.get(job.state, 0) | bit
            city = _fold(job.city)
            if city:
                self._city[city] = self._city.get(city, 0) | bit
            if job.work_mode == "remote":
                self.remote |= bit
                if not job.state:
                    self.remote_anywhere |= bit
            if not job.credentials:
                self.no_creds |= bit
            for cred in job.credentials:
                self._cred[cred] = self._cred.get(cred, 0) | bit
        self._cache: dict[str, int] = {}
        self._position_map: dict[int, int] | None = None

    def _any(self, table: dict[str, int], keys: Iterable[str]) -> int:
        bits = 0
        for key in keys:
            bits |= table.get(key, 0)
        return bits

    def _specialty_bits(self, specialty: str) -> int:
        if specialty not in self._specialty:
            bits = 0
            needle = f" {_fold(specialty)} "
            for i, text in enumerate(self._text):
                if needle in text:
                    bits |= 1 << i
            self._specialty[specialty] = bits
        return self._specialty[specialty]

    def bits(self, criteria: dict[str, Any]) -> int:
        """The set of matching jobs as a bitset (memoised per distinct criteria
        when ``memo`` is on: worth it only when the same criteria repeat and
        cost more to compute than to serialise as a key)."""
        key = json.dumps(criteria, sort_keys=True) if self.memo else ""
        cached = self._cache.get(key) if self.memo else None
        if cached is not None:
            return cached
        bits = self.all
        modes = criteria.get("work_modes") or []
        if modes:
            bits &= self._any(self._mode, modes)
        states = criteria.get("states") or []
        cities = [_fold(c) for c in criteria.get("cities") or []]
        if states or cities:
            in_states = self._any(self._state, states)
            place = self.remote_anywhere | (self.remote & in_states)
            local = self.all & ~self.remote
            if cities:
                local &= self._any(self._city, cities)
                if states:
                    local &= in_states
            else:
                local &= in_states
            bits &= place | local
        creds = criteria.get("credentials") or []
        if creds:
            bits &= self.no_creds | self._any(self._cred, creds)
        specialties = criteria.get("specialties") or []
        if specialties:
            spec = 0
            for s in specialties:
                spec |= self._specialty_bits(s)
            bits &= spec
        if self.memo:
            self._cache[key] = bits
        return bits

    def select(self, criteria: dict[str, Any], limit: int) -> tuple[list[JobLike], int]:
        """The first ``limit`` matching jobs (index order) and how many match in all."""
        bits = self.bits(criteria)
        return self._take(bits, limit), bits.bit_count()

    def select_new(self, criteria: dict[str, Any], limit: int, listed: set[int]) -> tuple[list[JobLike], int, list[JobLike]]:
        """Like :meth:`select` for one section of a digest whose earlier
        sections already listed the job ids ``listed``: (the first ``limit``
        matching jobs not listed yet, how many of those there are in all, the
        matching jobs that were listed already -- at most ``limit``)."""
        bits = self.bits(criteria)
        if not listed:
            return self._take(bits, limit), bits.bit_count(), []
        seen = 0
        positions = self._positions()
        for job_id in listed:
            position = positions.get(job_id)
            if position is not None:
                seen |= 1 << position
        fresh = bits & ~seen
        return self._take(fresh, limit), fresh.bit_count(), self._take(bits & seen, limit)

    def _positions(self) -> dict[int, int]:
        if self._position_map is None:
            self._position_map = {getattr(job, "id", None): i for i, job in enumerate(self.jobs)}
        return self._position_map

    def matching(self, criteria: dict[str, Any], limit: int | None = None) -> list[JobLike]:
        """Matching jobs in index order, at most ``limit``."""
        return self._take(self.bits(criteria), limit)

    def _take(self, bits: int, limit: int | None) -> list[JobLike]:
        found = []
        while bits and (limit is None or len(found) < limit):
            low = bits & -bits
            found.append(self.jobs[low.bit_length() - 1])
            bits ^= low
        return found

    def count(self, criteria: dict[str, Any]) -> int:
        return self.bits(criteria).bit_count()
