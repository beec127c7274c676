"""Prometheus metrics for ``/metrics``.

Each app gets its own registry (so several apps in one test process do not
collide).  Queue figures are read from the database when scraped, by a
custom collector, so every web process reports the same truth and nothing
has to be kept in step; request latency is a histogram per route template.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mailbot.context import Context
from mailbot.services import metrics

log = logging.getLogger(__name__)


class QueueCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self):
        try:
            with self.ctx.db.read() as session:
                snap = metrics.snapshot(session, sla_hours=self.ctx.settings.web.sla_hours)
        except Exception:  # a scrape must not fail because the database hiccupped
            log.exception("metrics: database read failed")
            up = GaugeMetricFamily("mailbot_database_up", "1 when the database answered the last scrape")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("mailbot_database_up", "1 when the database answered the last scrape")
        up.add_metric([], 1)
        yield up
        states = GaugeMetricFamily("mailbot_consultations", "Consultations by state", labels=["state"])
        for state, count in sorted(snap.per_state.items()):
            states.add_metric([state], count)
        yield states
        yield GaugeMetricFamily("mailbot_consultations_pending", "Consultations not yet finished", value=snap.pending)
        yield GaugeMetricFamily("mailbot_consultations_overdue",
                                "Consultations awaiting review longer than web.sla_hours", value=snap.overdue)
        if snap.median_answer_hours is not None:
            yield GaugeMetricFamily("mailbot_answer_median_hours",
                                    "Median hours from question to answer (last 14 days)",
                                    value=snap.median_answer_hours)
        outbound = GaugeMetricFamily("mailbot_outbound_messages", "Outbound messages by state", labels=["state"])
        for state, count in sorted(snap.outbound_per_state.items()):
            outbound.add_metric([state], count)
        yield outbound
        yield GaugeMetricFamily("mailbot_quarantine_open", "Unresolved quarantine items", value=snap.open_quarantine)


def build_registry(ctx: Context) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(ctx))
    request_seconds = Histogram("mailbot_web_request_seconds", "Web request latency", ["route", "method"],
                                registry=registry,
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
    return registry, request_seconds
