"""Helpers shared by test modules, imported explicitly (`from tests.support.service import ...`),
never through `conftest` or sys.path edits."""
