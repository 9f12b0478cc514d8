"""api: the golfcheck service around the `gepa` evaluator, in three layers.

- `api.core`: the persistence core (settings, database, models, the submission state machine,
  storage, queue, auth, quotas); no web framework. The worker builds on it too.
- `api.http`: the HTTP layer (FastAPI routes, HTML pages, uploads, OpenAPI, problem documents).
- `api.cli`: the `golfcheck` command line.
`api.main` composes the HTTP layer with the embedded worker (docs/architecture.md).
"""
