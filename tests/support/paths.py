"""Where the test data lives, independent of how deep a test module sits in tests/."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DATA = TESTS / "data"             # fixtures checked in with the tests (record folders, family fixtures)
RECORDS = DATA / "records"        # the published record folders (copied from ../shared)
SHARED = REPO.parent / "shared"   # the read-only reference material beside the checkout, when present
