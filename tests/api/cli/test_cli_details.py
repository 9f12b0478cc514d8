"""The contestant's command-line details (issue 13, item 4), each through the real `golfcheck`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import clean_env, run_cli
from tests.support.service import GOLFCHECK, Server, base_env, free_port, start_server
from tests.support.paths import REPO


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 300, cols: int = 160,
               until: str | None = None) -> tuple[str, int | None]:
    """Run with stdout/stderr on a pseudo-terminal (what a person sees); returns (output, rc).
    With `until`, stop reading once that text appears and terminate the process."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if until and until in b"".join(chunks).decode(errors="replace"):
                    break
            elif proc.poll() is not None:
                break
    finally:
        if until:
            proc.terminate()
        rc = proc.wait(timeout=30)
        os.close(master)
    return b"".join(chunks).decode(errors="replace"), rc


# -- evaluate ------------------------------------------------------------------------------------


def test_val_pointing_at_a_json_file_is_bad_input(tiny: dict[str, Any]) -> None:
    out = run_cli("evaluate", str(tiny["artifact"]), "--config", str(tiny["config"]), "--val", str(tiny["config"]))
    assert out.returncode == 2, out
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr
    assert "fineweb_val_*.bin" in out.stderr  # says what --val must name


def test_progress_bar_ends_on_the_final_bpb(tiny: dict[str, Any]) -> None:
    text, rc = run_in_pty([GOLFCHECK, "evaluate", str(tiny["artifact"]), "--config", str(tiny["config"]),
                           "--max-tokens", "4096"], clean_env())
    assert rc == 0, text
    final = float(re.search(r"val_bpb\s+([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    shown = re.findall(r"bpb=([0-9.]+)", text)
    assert shown, text
    assert float(shown[-1]) == pytest.approx(final, abs=6e-6)  # the bar prints 5 decimals


def test_tokens_scored_beyond_targets_is_explained(tiny: dict[str, Any]) -> None:
    out = run_cli("evaluate", str(tiny["artifact"]), "--config", str(tiny["config"]), "--max-tokens", "4096")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("tokens_scored"))
    scored, targets = (int(x.replace(",", "")) for x in re.findall(r"[\d,]{2,}", line)[:2])
    if scored > targets:
        assert f"last {scored - targets:,} targets a second time" in line, line


def test_submit_wait_bar_ends_on_the_measured_bpb(tiny: dict[str, Any], tmp_path: Path) -> None:
    """A server that pauses after each chunk (a demo setting), so the polling bar sees them."""
    srv = start_server(base_env(tmp_path, GOLFCHECK_EVAL_CHUNK_DELAY_S="0.7"), tmp_path)
    try:
        token = srv.token("submitter", "waiter")
        text, rc = run_in_pty([GOLFCHECK, "submit", str(tiny["dir"]), "--server", srv.url, "--token", token,
                               "--wait", "--interval", "0.2"], clean_env())
    finally:
        srv.proc.stop()
    assert rc == 0, text
    measured = float(re.search(r"measured:\s+val_bpb ([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    shown = re.findall(r"bpb=([0-9.]+)", text)
    assert len(set(shown)) >= 2, text  # it moved with the chunks
    assert float(shown[-1]) == pytest.approx(measured, abs=6e-6)
    assert f"on {srv.url}:" in text  # says which server it went to


# -- status, submissions -------------------------------------------------------------------------


def test_first_try_success_does_not_say_attempt(server: Server, alice: str, published: dict[str, Any]) -> None:
    out = run_cli("status", published["id"], "--server", server.url, "--token", alice)
    assert out.returncode == 0, out.stderr
    state_line = next(l for l in out.stdout.splitlines() if l.startswith("state:"))
    assert "attempt" not in state_line, state_line
    assert published["attempt"] >= 2  # the fencing counter the old line printed


def test_status_accepts_the_short_id(server: Server, alice: str, published: dict[str, Any]) -> None:
    out = run_cli("status", published["id"][:8], "--server", server.url, "--token", alice, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["id"] == published["id"]


def test_status_unknown_or_malformed_short_id_is_bad_input(server: Server, alice: str,
                                                           published: dict[str, Any]) -> None:
    other = "0000" if not published["id"].startswith("0000") else "ffff"
    out = run_cli("status", other, "--server", server.url, "--token", alice)
    assert out.returncode == 2 and "no submission of yours starts with" in out.stderr
    out = run_cli("status", "x!", "--server", server.url, "--token", alice)
    assert out.returncode == 2 and "not a submission id" in out.stderr


def test_status_into_a_closed_pipe_is_quiet(server: Server, alice: str, published: dict[str, Any]) -> None:
    """`golfcheck status ID | head`: the reader is gone before we write; no error, no traceback."""
    proc = subprocess.Popen([GOLFCHECK, "status", published["id"], "--server", server.url, "--token", alice],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    rc = proc.wait(timeout=120)
    assert "BrokenPipeError" not in err and "internal error" not in err and "Exception ignored" not in err, err
    assert rc == 141


def test_submissions_lists_mine(server: Server, alice: str, published: dict[str, Any]) -> None:
    out = run_cli("submissions", "--server", server.url, "--token", alice)
    assert out.returncode == 0, out.stderr
    row = next(l for l in out.stdout.splitlines() if l.startswith(published["id"][:8]))
    assert "published" in row and f"{published['measured_val_bpb']:.5f}" in row
    js = json.loads(run_cli("submissions", "--server", server.url, "--token", alice, "--json").stdout)
    assert [r["id"] for r in js] == [published["id"]]
    other = server.token("submitter", "bob")
    assert "no submissions yet" in run_cli("submissions", "--server", server.url, "--token", other).stdout
    bad = run_cli("submissions", "--server", server.url, "--token", alice, "--state", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


# -- serve -----------------------------------------------------------------------------------------


def test_second_serve_on_a_busy_port_fails_in_words(server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    out = subprocess.run([GOLFCHECK, "serve", "--port", port], env=server.env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr
    assert "{" not in out.stderr  # a sentence, not a JSON log line


def test_serve_logs_json_when_not_a_terminal_text_on_one(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env.pop("GOLFCHECK_LOG_JSON")
    srv = start_server(env, tmp_path)
    try:
        lines = [l for l in srv.proc.log().splitlines() if l.startswith("{")]
        assert lines, srv.proc.log()
        assert all("level" in json.loads(l) for l in lines)
    finally:
        srv.proc.stop()
    port = str(free_port())
    text, _ = run_in_pty([GOLFCHECK, "serve", "--port", port], env, timeout=120, until="Uvicorn running")
    assert "Uvicorn running" in text, text
    log_lines = [l for l in text.splitlines() if "INFO" in l]
    assert log_lines and not any(l.lstrip().startswith("{") for l in log_lines), text
    # Asked for JSON on a terminal: JSON.
    text, _ = run_in_pty([GOLFCHECK, "serve", "--port", str(free_port()), "--log-format", "json"], env,
                         timeout=120, until="Uvicorn running")
    assert any(l.strip().startswith("{") and "Uvicorn running" in l for l in text.splitlines()), text


# -- make ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_setup_reinstalls_only_when_pyproject_changes(tmp_path: Path) -> None:
    """The real Makefile against a stand-in venv whose pip records each call."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "pip").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'pip.calls'}\n")
    for f in ("python", "pip"):
        (bin_dir / f).chmod(0o755)

    def setup() -> int:
        before = (tmp_path / "pip.calls").read_text().count("\n") if (tmp_path / "pip.calls").exists() else 0
        subprocess.run(["make", "-s", "setup"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
        return (tmp_path / "pip.calls").read_text().count("\n") - before

    assert setup() == 2          # first run: torch, then the project
    assert setup() == 0          # nothing changed
    time.sleep(0.01)
    os.utime(tmp_path / "pyproject.toml")  # newer, same content
    assert setup() == 0
    with open(tmp_path / "pyproject.toml", "a") as fh:
        fh.write("\n# a change\n")
    assert setup() == 2
