"""The embedded worker: the same Celery tasks, consumed in-process from the in-memory broker.

`golfcheck serve` with no GOLFCHECK_BROKER_URL starts this inside the API process: a Celery
worker controller (solo pool) in a background thread consuming both queues, plus a reaper
thread. On start-up the reaper immediately re-sends everything still queued in the database,
because the in-memory broker forgets its messages when the process stops; stages that were
running when the process died are taken over once their heartbeat is stale.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from api.core import lifecycle
from api.core.models import Queue
from api.core.settings import Settings
from worker import tasks
from worker.celery_app import make_app

log = logging.getLogger("golfcheck.embedded")


class EmbeddedWorker:
    def __init__(self, settings: Settings):
        tasks.use_settings(settings)
        self.settings = settings
        self.app = make_app(settings)
        self._stop = threading.Event()
        self._controller: Any = None
        self._thread: threading.Thread | None = None
        self._reaper: threading.Thread | None = None

    def start(self) -> "EmbeddedWorker":
        app = self.app
        app.finalize()
        controller = app.WorkController(
            app=app, hostname="embedded@golfcheck", pool_cls="solo", concurrency=1,
            queues=[Queue.CHECKS.value, Queue.EVAL.value], loglevel=self.settings.log_level,
            without_heartbeat=True, without_mingle=True, without_gossip=True, ready_callback=None,
        )
        self._controller = controller
        self._thread = threading.Thread(target=controller.start, name="golfcheck-worker", daemon=True)
        self._thread.start()
        self._reaper = threading.Thread(target=self._reap_loop, name="golfcheck-reaper", daemon=True)
        self._reaper.start()
        log.info("embedded worker started (queues checks, eval)")
        return self

    def _reap_loop(self) -> None:
        # The in-memory broker starts empty: anything queued in the database needs a message now.
        first = self.settings.replace(requeue_after_s=0.0)
        try:
            lifecycle.reap(first)
        except Exception as exc:  # noqa: BLE001
            log.warning("start-up reap failed: %s", exc)
        while not self._stop.wait(self.settings.reaper_interval_s):
            try:
                lifecycle.reap(self.settings)
            except Exception as exc:  # noqa: BLE001 - keep reaping after a database blip
                log.warning("reap failed: %s: %s", type(exc).__name__, exc)

    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and self._reaper and self._reaper.is_alive())

    def stop(self) -> None:
        self._stop.set()
        if self._controller is not None:
            try:
                self._controller.stop(in_sighandler=False)
            except Exception as exc:  # noqa: BLE001
                log.warning("stopping the embedded worker: %s", exc)
        if self._thread is not None:
            self._thread.join(timeout=10)


def start(settings: Settings) -> EmbeddedWorker:
    return EmbeddedWorker(settings).start()
