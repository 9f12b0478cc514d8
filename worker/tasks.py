"""Thin Celery tasks: they take an id, the database row decides, the work is in `pipeline`.

Task names are fixed strings shared with `api.core.queue`, which sends them without importing this
module. Their time limits come from the settings object (`worker.celery_app.configure`), not from
the environment at import time. Unexpected keyword arguments are ignored so a rolling deploy that
adds one does not break.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from api.core import lifecycle
from api.core.logsetup import bind
from api.core.queue import TASK_CHECK, TASK_EVAL, TASK_REAP
from api.core.settings import Settings
from api.core.settings import get_settings as _env_settings
from worker import pipeline

log = logging.getLogger("golfcheck.tasks")
_override: Settings | None = None


def use_settings(settings: Settings | None) -> None:
    """The embedded worker runs with the settings object of its host process."""
    global _override
    _override = settings


def get_settings() -> Settings:
    return _override or _env_settings()


@shared_task(name=TASK_CHECK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def check_submission(self: Task, submission_id: str, **_ignored: Any) -> str | None:
    with bind(submission_id=submission_id):
        return pipeline.run_stage(get_settings(), submission_id, "checks", task_id=self.request.id)


@shared_task(name=TASK_EVAL, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def evaluate_submission(self: Task, submission_id: str, **_ignored: Any) -> str | None:
    with bind(submission_id=submission_id):
        return pipeline.run_stage(get_settings(), submission_id, "eval", task_id=self.request.id)


@shared_task(name=TASK_REAP, ignore_result=True)
def reap(**_ignored: Any) -> dict[str, list[str]]:
    report = lifecycle.reap(get_settings())
    if report.requeued or report.failed or report.resent:
        log.info("reaper: requeued %s, failed %s, resent %s", report.requeued, report.failed, report.resent)
    return {"requeued": report.requeued, "failed": report.failed, "resent": report.resent}
