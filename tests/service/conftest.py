"""Service test fixtures come from tests/conftest.py (shared with tests/hardening); the helpers
live in tests/common/service_support.py."""
