"""The golfcheck command line called in-process (`api.cli.main.main`), for the gepa and family
tests that check its output and its one-line errors without a subprocess."""

from __future__ import annotations

from api.cli.main import main


def run(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `golfcheck ARGV...`; paths may be given as Path objects."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str) -> str:
    """A hostile-input failure: exit 2, one `golfcheck: error: ...` line, no traceback; the line."""
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("golfcheck: error: "), err
    assert "Traceback" not in err
    return lines[0]
