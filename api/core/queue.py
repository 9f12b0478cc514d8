"""The task queue seen from the sending side: one Celery app per broker URL, tasks sent by name.

The API and the worker share this module (the worker adds its task implementations and worker
options to the same app object), but the API never imports `worker`: it sends
`golfcheck.check_submission` / `golfcheck.evaluate_submission` by name, with the submission id as
the only argument. Messages are pointers; the database row decides what happens.

Always send after the database commit that made the row ready (a message that arrives before the
commit would find nothing to do). If sending fails the row stays `queued` and the reaper sends it
again, so `enqueue` swallows broker errors after logging them.
"""

from __future__ import annotations

import functools
import logging
import threading

from celery import Celery

from api.core.models import Queue
from api.core.settings import Settings
import redis

log = logging.getLogger("golfcheck.queue")

TASK_CHECK = "golfcheck.check_submission"
TASK_EVAL = "golfcheck.evaluate_submission"
TASK_REAP = "golfcheck.reap"

TASK_FOR_QUEUE = {Queue.CHECKS.value: TASK_CHECK, Queue.EVAL.value: TASK_EVAL}

_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _app_for(broker_url: str, visibility_timeout_s: int, prefix: str) -> Celery:
    app = Celery("golfcheck", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=Queue.CHECKS.value,
        task_routes={
            TASK_CHECK: {"queue": Queue.CHECKS.value},
            TASK_EVAL: {"queue": Queue.EVAL.value},
            TASK_REAP: {"queue": Queue.CHECKS.value},
        },
        # Redis redelivers unacknowledged messages after this; it must exceed the hard time limit.
        broker_transport_options={"visibility_timeout": visibility_timeout_s,
                                  **({"global_keyprefix": prefix} if prefix else {})},
        # Publishing must not hang a request when Redis is down: fail fast, the reaper resends.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
    )
    return app


def celery_app(settings: Settings) -> Celery:
    with _lock:
        return _app_for(settings.broker_url, settings.visibility_timeout_s, settings.broker_prefix)


def enqueue(settings: Settings, queue: str, submission_id: str, *, countdown: float | None = None) -> bool:
    """Send the task for `queue`; True if the broker accepted it. Never raises for broker errors."""
    task = TASK_FOR_QUEUE[queue]
    try:
        celery_app(settings).send_task(task, args=[submission_id], queue=queue, countdown=countdown)
        return True
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the row for the reaper
        log.warning("could not enqueue %s for %s: %s: %s", task, submission_id, type(exc).__name__, exc)
        return False


def broker_reachable(settings: Settings, timeout: float = 2.0) -> bool:
    if settings.is_embedded_broker:
        return True
    try:
        with celery_app(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            return True
    except Exception:  # noqa: BLE001
        return False


def broker_queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting in each broker queue (Redis lists); empty for the in-memory broker."""
    if settings.is_embedded_broker or not settings.broker_url.startswith(("redis://", "rediss://")):
        return {}
    depths: dict[str, int] = {}
    try:
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
        for q in (Queue.CHECKS.value, Queue.EVAL.value):
            depths[q] = int(client.llen(settings.broker_prefix + q))
        client.close()
    except Exception:  # noqa: BLE001 - metrics must not fail because the broker is down
        return {}
    return depths
