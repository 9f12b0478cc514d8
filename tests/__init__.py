"""golfcheck's tests, laid out like the source tree (tests/api/core mirrors api/core, tests/gepa/...
mirrors gepa/...), plus suites named by what they drive: e2e (real servers over HTTP), hardening
(hostile input and faults), browser (Chromium), deploy (the compose file). Shared helpers live in
the importable package `tests.support`; conftest modules only hold fixtures."""
