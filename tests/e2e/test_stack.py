"""The production shape on one machine: PostgreSQL, Redis, `golfcheck serve --no-worker` and two
real Celery worker processes (checks with beat, eval). End to end through HTTP, then the faults:
a worker killed mid-evaluation, duplicate deliveries, and the database going away under the API."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import psycopg
import pytest
from tests.support.service import (
    REDIS_URL,
    Proc,
    Server,
    TcpProxy,
    base_env,
    start_server,
    start_worker,
    upload,
    wait_final,
    wait_until,
)
from api.core.queue import TASK_CHECK, TASK_EVAL, celery_app
from api.core.settings import Settings

BPB_TOL = 1e-6


class Stack:
    def __init__(self, server: Server, checks: Proc, eval_worker: Proc, pg_url: str):
        self.server, self.checks, self.eval_worker, self.pg_url = server, checks, eval_worker, pg_url

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg_url.replace("+psycopg", "")) as conn:
            return list(conn.execute(query, params).fetchall())

    def settings(self) -> Any:
        return Settings.from_env(self.server.env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_prefix: str) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("stack")
    env = base_env(data, GOLFCHECK_DATABASE_URL=pg_url, GOLFCHECK_BROKER_URL=REDIS_URL,
                   GOLFCHECK_BROKER_PREFIX=redis_prefix,
                   # Slow chunks down so a test can act "in the middle of an evaluation".
                   GOLFCHECK_EVAL_CHUNK_DELAY_S="0.7")
    procs: list[Proc] = []
    server = start_server(env, data, "--no-worker")
    try:
        procs.append(start_worker(env, data, "checks", "-B", "-s", str(data / "beat-schedule")))
        procs.append(start_worker(env, data, "eval"))
        yield Stack(server, procs[0], procs[1], pg_url)
    finally:
        for p in procs:
            p.stop()
        server.proc.stop()


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    return stack.server.token("submitter", "pg-alice")


def _unique(tag: str) -> str:
    return f"\n# {tag} {uuid.uuid4().hex}\n"


def test_end_to_end_on_postgres_and_redis(stack: Stack, token: str, tiny: dict[str, Any]) -> None:
    with stack.server.client(token) as c:
        resp = upload(c, tiny, submission_json={**tiny["claim"], "name": "Tiny", "author": "Alice"})
        assert resp.status_code == 202, resp.text
        assert resp.headers["location"] == f"/api/v1/submissions/{resp.json()['id']}"
        sid = resp.json()["id"]
        body = wait_final(c, sid)
        chunks = c.get(f"/api/v1/submissions/{sid}/chunks").json()["chunks"]
    assert body["state"] == "published", body["verdict"]
    assert body["measured_val_bpb"] == pytest.approx(tiny["expected"]["val_bpb"], abs=BPB_TOL)
    assert body["claimed_val_bpb"] == tiny["claim"]["val_bpb"] and body["name"] == "Tiny"
    # Verified: the whole canonical validation set was scored and the claim reproduced.
    rules = {r["rule"]: r for r in body["verdict"]["rules"]}
    assert rules["data.canonical"]["status"] == "pass" and rules["repro.bpb"]["status"] == "pass"
    assert body["measured"]["coverage"] == "full" and body["measured"]["val_sha256"] == tiny["val_sha256"]
    assert len(chunks) == len(tiny["expected"]["chunks"])
    assert stack.sql("SELECT count(*) FROM chunk_records WHERE submission_id = %s", sid)[0][0] == len(chunks)
    assert stack.sql("SELECT count(*) FROM results WHERE submission_id = %s", sid)[0][0] == 1
    with stack.server.client() as c:
        board = c.get("/api/v1/leaderboard", params={"track": "10min_16mb"}).json()
    assert sid in [e["submission_id"] for e in board["verified"]["entries"]]
    # Every transition is recorded with time and actor.
    hist = [(h["from"], h["to"]) for h in body["history"]]
    assert hist == [(None, "received"), ("received", "queued"), ("queued", "checking"), ("checking", "queued"),
                    ("queued", "evaluating"), ("evaluating", "scored"), ("scored", "published")]
    assert all(h["actor"] for h in body["history"])


def test_worker_killed_mid_evaluation_is_redelivered_once(stack: Stack, token: str, tiny: dict[str, Any]) -> None:
    # Which worker process runs an attempt is shown to reviewers only (issue 12: not to submitters).
    reviewer = stack.server.client(stack.server.token("reviewer", f"pg-rev-{uuid.uuid4().hex[:6]}"))
    with stack.server.client(token) as c, reviewer:
        sid = upload(c, tiny, extra_code=_unique("kill")).json()["id"]

        def mid_evaluation() -> dict[str, Any] | None:
            b = reviewer.get(f"/api/v1/submissions/{sid}").json()
            ok = b["state"] == "evaluating" and (b["progress"] or {}).get("chunks_done", 0) >= 1
            return b if ok else None

        body = wait_until(mid_evaluation, 300, "the evaluation to be under way")
        running = body["attempts"][-1]
        assert running["stage"] == "eval" and running["outcome"] == "running"
        pool_pid = int(running["worker"].rsplit(":", 1)[1])
        assert pool_pid != stack.eval_worker.pid  # the pool process, not the worker's main process
        os.kill(pool_pid, signal.SIGKILL)
        final = wait_final(c, sid)
    assert final["state"] == "published"
    assert final["measured_val_bpb"] == pytest.approx(tiny["expected"]["val_bpb"], abs=BPB_TOL)
    evals = [a for a in final["attempts"] if a["stage"] == "eval"]
    assert [a["outcome"] for a in evals] == ["abandoned", "succeeded"]
    # The same message came back (redelivery), not a new one from the reaper.
    tasks = stack.sql("SELECT task_id FROM attempts WHERE submission_id = %s AND stage = 'eval' ORDER BY number", sid)
    assert tasks[0][0] == tasks[1][0]
    assert stack.sql("SELECT count(*) FROM results WHERE submission_id = %s", sid)[0][0] == 1
    audit = stack.sql("SELECT action, attempt FROM audit_log WHERE submission_id = %s AND action = 'state.evaluating' "
                      "ORDER BY id", sid)
    assert [a for _, a in audit] == [evals[0]["number"], evals[1]["number"]]
    # Chunk rows of both attempts exist; the API shows the ones of the attempt that produced the result.
    shown = stack.sql("SELECT DISTINCT attempt FROM chunk_records WHERE submission_id = %s", sid)
    assert {a for (a,) in shown} >= {evals[1]["number"]}
    assert stack.eval_worker.alive()


def test_duplicate_delivery_stores_one_result(stack: Stack, token: str, tiny: dict[str, Any]) -> None:
    app = celery_app(stack.settings())
    with stack.server.client(token) as c:
        sid = upload(c, tiny, extra_code=_unique("dup")).json()["id"]
        wait_until(lambda: c.get(f"/api/v1/submissions/{sid}").json()["state"] == "evaluating", 300,
                   "the evaluation to start")
        # The same message twice (as a broker may deliver it), plus a stray check task.
        dup_id = str(uuid.uuid4())
        app.send_task(TASK_EVAL, args=[sid], queue="eval", task_id=dup_id)
        app.send_task(TASK_EVAL, args=[sid], queue="eval", task_id=dup_id)
        app.send_task(TASK_CHECK, args=[sid], queue="checks")
        final = wait_final(c, sid)
    wait_until(lambda: stack.sql("SELECT count(*) FROM audit_log WHERE submission_id = %s AND action = 'task.ignored'",
                                 sid)[0][0] >= 3, 120, "the duplicates to be consumed")
    assert final["state"] == "published"
    assert stack.sql("SELECT count(*) FROM results WHERE submission_id = %s", sid)[0][0] == 1
    assert stack.sql("SELECT count(*) FROM attempts WHERE submission_id = %s AND stage = 'eval'", sid)[0][0] == 1
    again = stack.sql("SELECT state, attempt FROM submissions WHERE id = %s", sid)[0]
    assert again == ("published", final["attempt"])


def _blob_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file() and "tmp" not in p.parts)


def test_database_briefly_unavailable(stack: Stack, tiny: dict[str, Any], tmp_path: Path) -> None:
    """An API whose database connection is cut answers 503 problem+json and stores nothing."""
    proxy = TcpProxy(("127.0.0.1", 5432))
    db_name = stack.pg_url.rsplit("/", 1)[1]
    env = dict(stack.server.env)
    env["GOLFCHECK_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{db_name}"
    env["GOLFCHECK_DATA_DIR"] = str(tmp_path)
    # Its own queues: the stack's workers cannot see this data directory.
    env["GOLFCHECK_BROKER_PREFIX"] = env["GOLFCHECK_BROKER_PREFIX"] + "dbdown:"
    server = start_server(env, tmp_path, "--no-worker")
    try:
        token = server.token("submitter", "dbdown")
        count = lambda: stack.sql("SELECT count(*) FROM submissions")[0][0]  # noqa: E731
        with server.client(token) as c:
            ok = upload(c, tiny, extra_code=_unique("before"))
            assert ok.status_code == 202
            before_rows, before_blobs = count(), _blob_files(tmp_path)

            proxy.cut()
            resp = upload(c, tiny, extra_code=_unique("down"))
            assert resp.status_code == 503
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["type"] == "urn:golfcheck:problem:database-unavailable"
            assert "retry-after" in resp.headers
            got = c.get(f"/api/v1/submissions/{ok.json()['id']}")
            assert got.status_code == 503 and got.json()["kind"] == "database-unavailable"
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"] is False

            # Cut the database while the body is still being sent: auth passed, the commit cannot.
            proxy.restore()
            def body() -> Iterator[bytes]:
                boundary = b"gcboundary"
                yield (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="artifact"; '
                       b'filename="a.ptz"\r\n\r\n' + tiny["artifact"].read_bytes() + b"\r\n")
                proxy.cut()
                yield (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="code"; filename="t.py"'
                       b"\r\n\r\n" + _unique("mid").encode() + b"\r\n--" + boundary + b"--\r\n")
            mid = c.post("/api/v1/submissions", content=body(),
                         headers={"Content-Type": "multipart/form-data; boundary=gcboundary"})
            assert mid.status_code == 503 and mid.json()["kind"] == "database-unavailable"

            assert count() == before_rows
            assert _blob_files(tmp_path) == before_blobs
            assert stack.sql("SELECT count(*) FROM submissions WHERE id NOT IN (SELECT submission_id FROM "
                             "state_transitions)")[0][0] == 0

            proxy.restore()
            after = upload(c, tiny, extra_code=_unique("after"))
            assert after.status_code == 202, after.text
            assert count() == before_rows + 1
    finally:
        server.proc.stop()
        proxy.close()


def test_readiness_and_metrics_see_the_broker(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server.url) as c:
        ready = c.get("/readyz").json()
        assert ready["checks"] == {"database": True, "broker": True}
        text = c.get("/metrics").text
    assert 'golfcheck_broker_queue_messages{queue="eval"}' in text
    assert "golfcheck_database_up 1.0" in text


def test_logs_are_json_with_submission_and_attempt(stack: Stack) -> None:
    lines = [json.loads(line) for line in stack.eval_worker.log().splitlines() if line.startswith("{")]
    assert lines, "the eval worker wrote no JSON log lines"
    assert all("submission_id" in rec and "attempt" in rec for rec in lines)
    claimed = [rec for rec in lines if rec["msg"] == "claimed eval stage"]
    assert claimed and all(rec["submission_id"] and rec["attempt"] for rec in claimed)
