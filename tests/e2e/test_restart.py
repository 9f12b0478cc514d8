"""The embedded default survives its own death: SIGKILL `golfcheck serve` in the middle of an
evaluation, start it again on the same data directory, and the submission still finishes once."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from tests.support.service import base_env, start_server, upload, wait_final, wait_until


def test_killed_embedded_server_resumes_work(tmp_path: Path, tiny: dict[str, Any]) -> None:
    env = base_env(tmp_path, GOLFCHECK_EVAL_CHUNK_DELAY_S="0.7", GOLFCHECK_STALE_AFTER_S="3")
    server = start_server(env, tmp_path)
    try:
        token = server.token("submitter", "restart")
        with server.client(token) as c:
            sid = upload(c, tiny, extra_code="\n# restart\n").json()["id"]
            wait_until(lambda: (c.get(f"/api/v1/submissions/{sid}").json()["progress"] or {})
                       .get("chunks_done", 0) >= 1, 300, "the evaluation to be under way")
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.popen.wait(timeout=30)
    finally:
        server.proc.stop()
    again = start_server(env, tmp_path)
    try:
        with again.client(token) as c:
            final = wait_final(c, sid)
    finally:
        again.proc.stop()
    assert final["state"] == "published"
    assert final["measured_val_bpb"] == pytest.approx(tiny["expected"]["val_bpb"], abs=1e-6)
    evals = [a["outcome"] for a in final["attempts"] if a["stage"] == "eval"]
    assert evals == ["abandoned", "succeeded"]
    assert any("stopped heartbeating" in (h["reason"] or "") or "lost" in (h["reason"] or "")
               for h in final["history"])
