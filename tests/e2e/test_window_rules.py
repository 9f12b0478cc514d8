"""A March record scored with its own window rule, end to end: the MLP3x_QAT_Int6 artifact (its own
quantizer, zstd-22) is uploaded over HTTP with the config its final eval used (`eval.tail:
"last_stride"`, which never scores the first T − s targets). The service must publish golfcheck's
every-target-once score as the verified, full-coverage number and keep the record's own figure
next to it in the family figures, never as the result."""

from __future__ import annotations

import json
import uuid
from typing import Iterator

import httpx
import pytest
from tests.support.service import REDIS_URL, Proc, Server, base_env, start_server, start_worker, wait_final

from gepa.shards import fingerprint
from tests.e2e.test_families import login_as
from tests.support.baseline_rules import RULES_DATA, naive_score
from tests.support.paths import DATA

FOLDER = RULES_DATA / "mlp3x"
CASE = "sliding_last_stride_s48"
SHARD = DATA / "baseline_small" / "fineweb_val_000000.bin"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_prefix: str) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("rules")
    env = base_env(data, GOLFCHECK_DATABASE_URL=pg_url, GOLFCHECK_BROKER_URL=REDIS_URL,
                   GOLFCHECK_BROKER_PREFIX=f"{redis_prefix}rules-", GOLFCHECK_MAX_VAL_TOKENS="",
                   GOLFCHECK_FAMILY_DATA=json.dumps({"baseline": {"val_glob": str(SHARD),
                                                                   "val_sha256": fingerprint([SHARD])}}))
    procs: list[Proc] = []
    server = start_server(env, data, "--no-worker")
    try:
        procs.append(start_worker(env, data, "checks"))
        procs.append(start_worker(env, data, "eval"))
        yield server
    finally:
        for p in procs:
            p.stop()
        server.proc.stop()


def test_record_rule_is_reported_next_to_golfchecks_verified_score(service: Server) -> None:
    loss, bpb, _, _ = naive_score("mlp3x", CASE)  # golfcheck's rule, scored window by window
    rec_loss, rec_bpb = json.loads((FOLDER / "expected.json").read_text())["results"][CASE]
    artifact = FOLDER / "final_model.int8.ptz"
    code = f"# MLP3x fixture\n# {uuid.uuid4().hex}\n".encode()
    files = [
        ("artifact", (artifact.name, artifact.read_bytes(), "application/octet-stream")),
        ("code", ("train_gpt.py", code, "text/x-python")),
        ("config", ("eval.json", (FOLDER / f"eval_{CASE}.json").read_bytes(), "application/json")),
        ("submission_json", ("submission.json", json.dumps({"name": f"mlp3x {uuid.uuid4().hex[:6]}", "author": "Fixture",
                                                             "val_bpb": bpb, "val_loss": loss,
                                                             "track": "track_10min_16mb"}).encode(), "application/json")),
        ("logs", ("train_seed0.log", f"seed:0\nfinal_sliding_window_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}\n".encode(),
                  "text/plain")),
    ]
    with service.client(service.token("submitter", "rules")) as c:
        resp = c.post("/api/v1/submissions", files=files)
        assert resp.status_code == 202, resp.text
        body = wait_final(c, resp.json()["id"], timeout=900)
    not_passing = [(r["rule"], r["status"], r["message"]) for r in body["verdict"]["rules"] if r["status"] != "pass"]
    assert body["state"] == "published" and body["verdict"]["status"] == "pass", (body["state"], not_passing)
    m = body["measured"]
    assert m["coverage"] == "full" and m["tokens_scored"] == m["total_targets"]
    assert body["measured_val_bpb"] == pytest.approx(bpb, abs=1e-5) and m["val_loss"] == pytest.approx(loss, abs=1e-5)
    rule = m["extra"]["record_rule"]
    assert rule["tail"] == "last_stride" and rule["unscored_targets"] > 0
    assert rule["val_bpb"] == pytest.approx(rec_bpb, abs=1e-5) and rule["val_loss"] == pytest.approx(rec_loss, abs=1e-5)
    assert rule["val_bpb"] != pytest.approx(body["measured_val_bpb"], abs=1e-5)  # the record's figure is not the result
    with httpx.Client(base_url=service.url, timeout=60, follow_redirects=False) as browser:
        login_as(browser, service.token("reviewer", "rules-reviewer"))
        page = browser.get(f"/review/submissions/{body['id']}")
        assert page.status_code == 200 and 'id="family-extra"' in page.text and "last_stride" in page.text
