"""Structured JSON logs with the submission id and attempt on every line.

`bind(submission_id=..., attempt=...)` sets context variables that the formatter adds to every
record emitted in that context (thread or task), so a worker's log lines and the API's lines
about one submission can be joined without parsing messages. Lines outside any submission carry
`null` for both fields, which keeps the schema fixed for log shippers. In a terminal the same
records are written as plain text lines instead (`configure(json_lines=None)` picks by TTY).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any, Iterator

_submission_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("submission_id", default=None)
_attempt: contextvars.ContextVar[int | None] = contextvars.ContextVar("attempt", default=None)

_STD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


@contextlib.contextmanager
def bind(*, submission_id: str | None = None, attempt: int | None = None) -> Iterator[None]:
    t1 = _submission_id.set(submission_id)
    t2 = _attempt.set(attempt)
    try:
        yield
    finally:
        _submission_id.reset(t1)
        _attempt.reset(t2)


def _celery_submission(record: logging.LogRecord) -> str | None:
    """Celery's own "received"/"succeeded" lines carry the task's args in `record.data`; every
    golfcheck task takes the submission id as its first argument."""
    data = getattr(record, "data", None)
    if isinstance(data, dict):
        args = data.get("args")
        if isinstance(args, (list, tuple)) and args and isinstance(args[0], str) and len(args[0]) == 36:
            return args[0]
        if isinstance(args, str) and len(args) >= 40 and args[2:38].count("-") == 4:
            return args[2:38]
    return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        sid = getattr(record, "submission_id", None) or _submission_id.get() or _celery_submission(record)
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "submission_id": sid,
            "attempt": getattr(record, "attempt", None) or _attempt.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and key not in out and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        sid = _submission_id.get()
        prefix = f"[{sid[:8]}#{_attempt.get()}] " if sid else ""
        record.msg = prefix + str(record.msg)
        try:
            return super().format(record)
        finally:
            record.msg = str(record.msg)[len(prefix):]


def wants_json(json_lines: bool | None, stream: Any = None) -> bool:
    """An explicit choice wins; otherwise JSON for machines (not a TTY), text for people."""
    if json_lines is not None:
        return json_lines
    stream = stream or sys.stderr
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure(level: str = "INFO", json_lines: bool | None = True, stream: Any = None) -> None:
    """Install one handler on the root logger (idempotent; replaces handlers we installed before).
    `json_lines=None` chooses by whether the stream is a terminal."""
    json_lines = wants_json(json_lines, stream)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_golfcheck", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._golfcheck = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # Uvicorn's own loggers propagate to ours, so their lines are JSON too.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "kombu"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
