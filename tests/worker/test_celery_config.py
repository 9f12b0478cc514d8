"""Celery's configuration comes from the settings object (one object, read once), not from the
environment at import time: limits given to `Settings` reach the app the worker runs."""

from __future__ import annotations

from pathlib import Path

from api.core.queue import TASK_CHECK, TASK_EVAL, TASK_REAP
from api.core.settings import Settings
from worker.celery_app import make_app


def _settings(tmp_path: Path, **over: object) -> Settings:
    # A broker URL of the test's own, so the app is not shared with another test's settings.
    return Settings(data_dir=tmp_path, broker_url=f"memory://{tmp_path.name}", **over)  # type: ignore[arg-type]


def test_time_limits_of_the_settings_object_reach_the_tasks(tmp_path: Path, monkeypatch) -> None:
    # The environment says something else: it must not matter once a settings object is given.
    monkeypatch.setenv("GOLFCHECK_EVAL_TIME_LIMIT_S", "99999")
    s = _settings(tmp_path, eval_time_limit_s=1234, check_time_limit_s=321, reaper_interval_s=7.0)
    app = make_app(s)
    app.finalize()
    ev, ch = app.tasks[TASK_EVAL], app.tasks[TASK_CHECK]
    # The hard limit is the backstop after the pipeline's own deadline, the soft one before it.
    assert ch.soft_time_limit > s.check_time_limit_s and ch.time_limit > ch.soft_time_limit
    assert ev.soft_time_limit > s.eval_time_limit_s and ev.time_limit > ev.soft_time_limit
    # Each task's limits move with its own setting (equal margins), whatever the environment says.
    assert ev.time_limit - ch.time_limit == s.eval_time_limit_s - s.check_time_limit_s
    assert ev.soft_time_limit - ch.soft_time_limit == s.eval_time_limit_s - s.check_time_limit_s
    assert app.conf.beat_schedule["reap"]["schedule"] == s.reaper_interval_s
    assert app.conf.broker_transport_options["visibility_timeout"] == s.visibility_timeout_s
    assert s.visibility_timeout_s > ev.time_limit  # Redis must not redeliver a task still running
    assert TASK_REAP in app.tasks


def test_a_finalized_app_takes_new_limits(tmp_path: Path) -> None:
    """Two settings objects that share a broker and a visibility timeout share the app: the second
    configuration still reaches the tasks already bound to it."""
    first = _settings(tmp_path, eval_time_limit_s=1000, check_time_limit_s=100)
    second = _settings(tmp_path, eval_time_limit_s=1000, check_time_limit_s=200)
    assert first.visibility_timeout_s == second.visibility_timeout_s
    app = make_app(first)
    app.finalize()
    low = app.tasks[TASK_CHECK].soft_time_limit
    assert make_app(second) is app
    high = app.tasks[TASK_CHECK].soft_time_limit
    assert high - low == second.check_time_limit_s - first.check_time_limit_s
