"""Prometheus metrics at /metrics.

HTTP latency is measured in this process. Everything about submissions is read from the database
at scrape time, because the work happens in other processes (Celery workers on other machines):
submissions by state, queue depth per queue (database rows waiting, and broker messages),
evaluation and GPU seconds, and rule failures. The database is the one place that sees them all.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from api.core.db import session_scope
from api.core.models import Queue, Result, RuleResult, State, Submission
from api.core.queue import broker_queue_depths
from api.core.settings import Settings

log = logging.getLogger("golfcheck.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseCollector(Collector):
    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily("golfcheck_database_up", "1 if the metrics query reached the database")
        try:
            families = list(self._collect())
            up.add_metric([], 1)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("metrics: database query failed: %s", type(exc).__name__)
            families = []
            up.add_metric([], 0)
        yield up
        yield from families

    def _collect(self) -> Iterable[Any]:
        by_state = GaugeMetricFamily("golfcheck_submissions", "Submissions by state", labels=["state"])
        depth = GaugeMetricFamily("golfcheck_queue_depth", "Submissions waiting per queue (database)", labels=["queue"])
        broker = GaugeMetricFamily("golfcheck_broker_queue_messages", "Messages waiting per broker queue",
                                   labels=["queue"])
        eval_s = CounterMetricFamily("golfcheck_evaluation_seconds", "Wall seconds spent in stored evaluations")
        gpu_s = CounterMetricFamily("golfcheck_gpu_seconds", "GPU seconds spent in stored evaluations")
        evals = CounterMetricFamily("golfcheck_evaluations", "Stored evaluation results")
        fails = CounterMetricFamily("golfcheck_rule_failures", "Rule results with status fail", labels=["rule"])
        with session_scope(self.settings) as s:
            counts = dict(s.execute(select(Submission.state, func.count()).group_by(Submission.state)).all())
            for st in State:
                by_state.add_metric([st.value], float(counts.get(st.value, 0)))
            waiting = dict(s.execute(select(Submission.queue, func.count())
                                     .where(Submission.state == State.QUEUED.value)
                                     .group_by(Submission.queue)).all())
            for q in Queue:
                depth.add_metric([q.value], float(waiting.get(q.value, 0)))
            n, total, gpu = s.execute(select(func.count(Result.id), func.coalesce(func.sum(Result.elapsed_s), 0.0),
                                             func.coalesce(func.sum(Result.gpu_seconds), 0.0))).one()
            evals.add_metric([], float(n))
            eval_s.add_metric([], float(total))
            gpu_s.add_metric([], float(gpu))
            for rule, c in s.execute(select(RuleResult.rule, func.count()).where(RuleResult.status == "fail")
                                     .group_by(RuleResult.rule)).all():
                fails.add_metric([rule], float(c))
        for q, c in broker_queue_depths(self.settings).items():
            broker.add_metric([q], float(c))
        return [by_state, depth, broker, eval_s, gpu_s, evals, fails]


class Metrics:
    def __init__(self, settings: Settings):
        self.registry = CollectorRegistry()
        self.http_latency = Histogram(
            "golfcheck_http_request_duration_seconds", "HTTP request latency",
            ["method", "route", "status"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.registry.register(DatabaseCollector(settings))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> Callable[..., Any]:
        async def _mw(request: Any, call_next: Callable[..., Any]) -> Any:
            start = time.perf_counter()
            status = 500
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                # The route template, not the raw path, keeps label cardinality bounded.
                route = request.scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                self.http_latency.labels(request.method, path, str(status)).observe(time.perf_counter() - start)
        return _mw
