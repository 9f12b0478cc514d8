"""Faults on the production shape, with real processes on loopback: PostgreSQL, a Redis of the
test's own, `golfcheck serve --no-worker`, a checks worker running beat (the reaper, every second)
and an eval worker whose database connection goes through a proxy the test can cut mid-write.

Each fault ends with the same invariants: every accepted submission reaches a terminal state, at
most one result per (submission, attempt) and exactly one per scored submission, no orphan blob,
and the audit log says what happened. tests/e2e/test_stack.py already covers the
pool process killed mid-evaluation (redelivery of the same message), duplicate deliveries and
the API losing its database; these cover what it does not: the whole worker vanishing (only the
reaper can notice), the broker restarting empty under a queue of 20, the database going away in
the middle of the result write-back (before and after the commit), and the API dying mid-upload.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from tests.support.hardening import (
    HServer,
    RedisServer,
    WriteBackCutter,
    assert_no_orphans,
    files_for,
    temp_files,
    unique_code,
)
from tests.support.service import FINAL_STATES, Proc, _create_db, _drop_db, base_env, start_server, start_worker, wait_until
from api.core.db import dispose_engines

TIMEOUT = 240  # bounds each wait; nothing here asserts on time


class Stack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.db = _create_db()
        self.redis = RedisServer(tmp)
        self.proxy = WriteBackCutter()
        common = dict(GOLFCHECK_BROKER_URL=self.redis.url, GOLFCHECK_EVAL_CHUNK_DELAY_S="0.4",
                      GOLFCHECK_STALE_AFTER_S="5", GOLFCHECK_REQUEUE_AFTER_S="6",
                      GOLFCHECK_EVAL_TIME_LIMIT_S="60", GOLFCHECK_CHECK_TIME_LIMIT_S="60",
                      GOLFCHECK_ORPHAN_AFTER_S="3")
        self.env = base_env(tmp, GOLFCHECK_DATABASE_URL=self.pg_url(5432), **common)
        # Plain text on the proxied connection: the cutter must see the statements go by.
        self.eval_env = dict(self.env, GOLFCHECK_DATABASE_URL=self.pg_url(self.proxy.port) + "?sslmode=disable")
        self.procs: list[Proc] = []
        self.server = start_server(self.env, tmp, "--no-worker")
        self.checks = self._worker(self.env, "checks", "-B", "-s", str(tmp / "beat-schedule"))
        self.eval = self._worker(self.eval_env, "eval")
        self.token = self.server.token("submitter", "faults")

    def pg_url(self, port: int) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{self.db}"

    def _worker(self, env: dict[str, str], queue: str, *extra: str) -> Proc:
        p = start_worker(env, self.tmp, queue, *extra)
        self.procs.append(p)
        return p

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        return HServer(self.server, self.db, self.tmp).sql(query, *params)

    def client(self) -> httpx.Client:
        return self.server.client(self.token)

    def upload(self, c: httpx.Client, tiny: dict[str, Any], tag: str) -> str:
        resp = c.post("/api/v1/submissions", files=files_for(tiny, code=unique_code(tiny, tag)))
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def state(self, sid: str) -> dict[str, Any]:
        with self.client() as c:
            return c.get(f"/api/v1/submissions/{sid}").json()  # type: ignore[no-any-return]

    def wait_final(self, sid: str) -> dict[str, Any]:
        return wait_until(lambda: (lambda b: b if b["state"] in FINAL_STATES else None)(self.state(sid)),
                          TIMEOUT, f"{sid} to finish", interval=0.5)  # type: ignore[no-any-return]

    def wait_evaluating(self, sid: str) -> dict[str, Any]:
        return wait_until(lambda: (lambda b: b if b["state"] == "evaluating"
                                   and (b["progress"] or {}).get("chunks_done", 0) >= 1 else None)(self.state(sid)),
                          TIMEOUT, f"{sid} to be mid-evaluation", interval=0.2)  # type: ignore[no-any-return]

    def close(self) -> None:
        for p in self.procs:
            p.stop()
        self.server.proc.stop()
        self.redis.kill()
        self.proxy.close()
        dispose_engines()
        _drop_db(self.db)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("faults"))
    yield s
    s.close()


def results_of(stack: Stack, sid: str) -> list[int]:
    return [a for (a,) in stack.sql("SELECT attempt FROM results WHERE submission_id = %s ORDER BY attempt", sid)]


def audit(stack: Stack, sid: str) -> list[tuple[str, str, int | None, str | None]]:
    return [tuple(r) for r in stack.sql("SELECT actor, action, attempt, details FROM audit_log "  # type: ignore[misc]
                                        "WHERE submission_id = %s ORDER BY id", sid)]


def test_reaper_requeues_work_of_a_worker_that_vanished(stack: Stack, tiny: dict[str, Any]) -> None:
    """SIGKILL the eval worker's whole process group mid-evaluation: no process is left to report
    anything, and the broker keeps the unacknowledged message for its (long) visibility timeout.
    Only the reaper can notice: after the heartbeat goes stale it re-queues the stage with a new
    message, which a fresh worker runs to the end."""
    with stack.client() as c:
        sid = stack.upload(c, tiny, "vanish")
    stack.wait_evaluating(sid)
    os.killpg(stack.eval.pid, signal.SIGKILL)
    stack.eval.popen.wait(timeout=30)
    # The stage is re-queued by the reaper, not by any worker (there is none for eval now).
    wait_until(lambda: stack.state(sid)["state"] == "queued", TIMEOUT, "the reaper to re-queue the stage")
    stack.eval = stack._worker(stack.eval_env, "eval")
    final = stack.wait_final(sid)
    assert final["state"] == "published"
    evals = [a for a in final["attempts"] if a["stage"] == "eval"]
    assert [a["outcome"] for a in evals] == ["abandoned", "succeeded"]
    assert evals[0]["error"] == "heartbeat stopped"
    tasks = stack.sql("SELECT task_id FROM attempts WHERE submission_id = %s AND stage = 'eval' ORDER BY number", sid)
    assert tasks[0][0] != tasks[1][0]  # a new message from the reaper, not a redelivery
    assert results_of(stack, sid) == [evals[1]["number"]]
    requeue = [h for h in final["history"] if h["from"] == "evaluating" and h["to"] == "queued"]
    assert len(requeue) == 1 and requeue[0]["actor"] == "system:reaper"
    assert "stopped heartbeating" in requeue[0]["reason"]


def test_broker_restart_under_a_queue_of_20(stack: Stack, tiny: dict[str, Any]) -> None:
    """20 submissions; Redis is killed (losing every message) after the first 6 are accepted, 6
    more are uploaded while it is down (accepted: the rows are the truth, the messages are only
    pointers), then it comes back empty for the last 8. The reaper re-sends what was lost."""
    sids: list[str] = []
    with stack.client() as c:
        for i in range(6):
            sids.append(stack.upload(c, tiny, f"q{i}"))
        stack.redis.kill()
        for i in range(6, 12):
            sids.append(stack.upload(c, tiny, f"q{i}"))
        stack.redis.start()
        for i in range(12, 20):
            sids.append(stack.upload(c, tiny, f"q{i}"))
    finals = [stack.wait_final(sid) for sid in sids]
    assert [f["state"] for f in finals] == ["published"] * 20
    bpbs = [f["measured_val_bpb"] for f in finals]
    assert None not in bpbs
    assert max(bpbs) - min(bpbs) < 1e-6  # same model, same data: one number (float32 TTT jitter aside)
    for f in finals:
        assert results_of(stack, f["id"]) == [f["measured"]["attempt"]]
    resent = stack.sql("SELECT count(DISTINCT submission_id) FROM audit_log WHERE action = 'task.resent' "
                       "AND actor = 'system:reaper' AND submission_id = ANY(%s)", sids)[0][0]
    assert resent >= 1, "nothing was lost with the broker's memory?"


@pytest.mark.parametrize("mode", ["before", "after-commit"])
def test_database_lost_during_result_write_back(stack: Stack, tiny: dict[str, Any], mode: str) -> None:
    """The eval worker's database connection is cut exactly at the result write: either the INSERT
    never arrives (nothing stored: the stage is abandoned and re-run) or the COMMIT arrives and its
    answer is lost (stored: the worker errs, the submission stands). One result either way."""
    # A fresh eval worker: psycopg prepares a statement after its fifth use on a connection and
    # then no longer sends its text, which the cutter needs to see.
    stack.eval.stop()
    stack.eval = stack._worker(stack.eval_env, "eval")
    stack.proxy.arm(b"INSERT INTO results", mode)
    with stack.client() as c:
        sid = stack.upload(c, tiny, f"pg-{mode}")
    wait_until(stack.proxy.fired.is_set, TIMEOUT, "the write-back to be cut")
    time.sleep(2)  # the database stays away a while: the worker's retry path meets it down too
    stack.proxy.restore()
    final = stack.wait_final(sid)
    assert final["state"] == "published"
    evals = [a for a in final["attempts"] if a["stage"] == "eval"]
    if mode == "before":
        assert [a["outcome"] for a in evals] == ["abandoned", "succeeded"]
        assert results_of(stack, sid) == [evals[1]["number"]]
        actors = {(actor, action) for actor, action, _, _ in audit(stack, sid)}
        assert ("system:reaper", "state.queued") in actors
    else:
        assert [a["outcome"] for a in evals] == ["succeeded"]
        assert results_of(stack, sid) == [evals[0]["number"]]
        # The commit landed though the worker never heard so; its error path finds the row no
        # longer its own (or the database still gone) and writes nothing more.
        assert [a for _, a, _, _ in audit(stack, sid)].count("state.scored") == 1
    assert final["measured_val_bpb"] is not None


def test_api_killed_during_an_upload(stack: Stack, tiny: dict[str, Any]) -> None:
    """SIGKILL the API while a body is half sent: the client's upload is lost (it never got a 202),
    nothing half-made is visible, the temp file it left is swept by the reaper, and work accepted
    before the crash finishes without the API."""
    with stack.client() as c:
        accepted = stack.upload(c, tiny, "before-crash")
    art = tiny["artifact"].read_bytes()
    boundary = "gcb" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"a.ptz\"\r\n\r\n").encode()
    host, port = stack.server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall((f"POST /api/v1/submissions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {stack.token}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(head) + 2 * len(art)}"
                  "\r\n\r\n").encode() + head + art)
    wait_until(lambda: temp_files(stack.tmp), 60, "the upload to reach storage")
    rows = stack.sql("SELECT count(*) FROM submissions")[0][0]
    os.killpg(stack.server.proc.pid, signal.SIGKILL)
    stack.server.proc.popen.wait(timeout=30)
    sock.close()
    assert stack.sql("SELECT count(*) FROM submissions")[0][0] == rows
    stack.server = start_server(stack.env, stack.tmp, "--no-worker")
    assert stack.wait_final(accepted)["state"] == "published"
    wait_until(lambda: not temp_files(stack.tmp), TIMEOUT, "the reaper to sweep the dead upload's temp file")
    swept = stack.sql("SELECT actor, details FROM audit_log WHERE action = 'storage.swept'")
    assert swept and all(actor == "system:reaper" for actor, _ in swept)
    # The API that came back takes uploads again.
    with stack.client() as c:
        assert stack.wait_final(stack.upload(c, tiny, "after-restart"))["state"] == "published"


def test_afterwards_nothing_is_lost_or_doubled(stack: Stack) -> None:
    """Across every fault of this module."""
    states = dict(stack.sql("SELECT state, count(*) FROM submissions GROUP BY state"))
    assert set(states) == {"published"}, states
    assert stack.sql("SELECT count(*) FROM (SELECT 1 FROM results GROUP BY submission_id, attempt "
                     "HAVING count(*) > 1) d")[0][0] == 0
    assert stack.sql("SELECT count(*) FROM submissions s WHERE (SELECT count(*) FROM results r "
                     "WHERE r.submission_id = s.id) <> 1")[0][0] == 0
    assert stack.sql("SELECT count(*) FROM submissions s JOIN results r ON r.id = s.result_id "
                     "WHERE r.attempt <> (SELECT max(number) FROM attempts a WHERE a.submission_id = s.id "
                     "AND a.outcome = 'succeeded' AND a.stage = 'eval')")[0][0] == 0
    wait_until(lambda: not temp_files(stack.tmp), TIMEOUT, "temp files to be swept")
    assert_no_orphans(stack.sql, stack.tmp)
