"""The persistence core: settings, database and models, the submission state machine, blob
storage, the task queue, authentication and quotas. Used by the HTTP layer, the worker and the
command line; imports no web framework (tests/test_import_contracts.py)."""
