"""worker: Celery app and thin tasks; the work itself is in `worker.pipeline` (plain functions)."""
