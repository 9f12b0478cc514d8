"""worker: Celery application and thin tasks that call plain functions."""
