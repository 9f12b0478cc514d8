"""The Celery application of the workers: `celery -A worker.celery_app worker -Q checks|eval`.

Reliability settings, each for a reason:
- `task_acks_late` + `task_reject_on_worker_lost`: a message is acknowledged only after the task
  finished, and goes back to the queue if the worker process dies mid-task (OOM, SIGKILL), so a
  lost worker never loses a submission.
- `worker_prefetch_multiplier = 1`: a worker holds only the task it runs; a second evaluation
  never waits behind a long one on a busy GPU node while another node is idle.
- broker `visibility_timeout` (from settings) above the hard time limit: Redis would otherwise
  hand a still-running task to a second worker.
- time limits per task (from the settings object, as task annotations): the soft limit lets the
  pipeline record an outcome, the hard one kills.
- retries happen through the database (`api.core.lifecycle.platform_fault` and the reaper), never by
  blind re-execution, so a retried task re-reads the row and respects the fencing attempt.

The beat schedule runs the reaper; run beat once (`-B` on the checks worker, or its own process).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_init

from api.core import logsetup
from api.core.db import dispose_engines
from api.core.models import Queue
from api.core.queue import TASK_CHECK, TASK_EVAL, TASK_REAP, celery_app
from api.core.settings import Settings, get_settings
from worker import tasks

# Registered on every app by `shared_task` when the app finalizes; named here so the import stays.
TASKS = (tasks.check_submission, tasks.evaluate_submission, tasks.reap)


def time_limits(settings: Settings) -> dict[str, dict[str, int]]:
    """Celery's limits per task. The pipeline enforces its own deadline (hard - grace) and records
    the outcome; Celery's soft limit comes after it, and the hard limit is the backstop that kills a
    wedged process."""
    return {name: {"time_limit": hard + 60, "soft_time_limit": hard + 30}
            for name, hard in ((TASK_CHECK, settings.check_time_limit_s), (TASK_EVAL, settings.eval_time_limit_s))}


def configure(app: Celery, settings: Settings) -> Celery:
    limits = time_limits(settings)
    app.conf.update(
        task_annotations=limits,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        task_queues=None,
        task_create_missing_queues=True,
        beat_schedule={
            "reap": {"task": TASK_REAP, "schedule": settings.reaper_interval_s,
                     "options": {"queue": Queue.CHECKS.value, "expires": settings.reaper_interval_s}},
        },
    )
    if app.finalized:  # annotations reach tasks when they are bound; these already are
        for name, attrs in limits.items():
            for key, value in attrs.items():
                setattr(app.tasks[name], key, value)
    return app


@setup_logging.connect
def _logging(**_kwargs: Any) -> None:
    # Connecting this signal stops Celery from installing its own handlers: our JSON lines carry
    # the submission id and attempt on every line, Celery's would not.
    s = get_settings()
    logsetup.configure(s.log_level, s.log_json)


@worker_process_init.connect
def _after_fork(**_kwargs: Any) -> None:
    dispose_engines()  # never share pooled connections across fork


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    return configure(celery_app(settings), settings)


app = make_app()
