"""Fixtures of the compliance tests; their helpers live in tests/support/compliance.py."""

import json

import pytest


@pytest.fixture
def make_record(tmp_path):
    """Build a records folder: make_record(submission=dict, logs={name: text}, code=str|None)."""
    def build(submission=None, logs=None, code=None, track="track_10min_16mb", name="2026-04-01_Test", readme=True):
        folder = tmp_path / track / name
        k = 1
        while folder.exists():  # several records per test get distinct folders
            k += 1
            folder = tmp_path / track / f"{name}_{k}"
        folder.mkdir(parents=True)
        if submission is not None:
            (folder / "submission.json").write_text(json.dumps(submission) if not isinstance(submission, str) else submission)
        for fname, text in (logs or {}).items():
            (folder / fname).parent.mkdir(parents=True, exist_ok=True)
            (folder / fname).write_text(text)
        if code is not None:
            (folder / "train_gpt.py").write_text(code)
        if readme:
            (folder / "README.md").write_text("# test\n")
        return folder
    return build
