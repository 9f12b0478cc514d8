"""The embedded default end to end: `golfcheck serve` on SQLite with the in-process worker,
driven through real HTTP and the real command line; plus every bad-request path (problem+json)."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.embedded import embedded_server, publish
from tests.support.service import (
    TINY_CONFIG,
    Server,
    upload,
    wait_final,
)
from tests.support.paths import RECORDS
import shutil

PROBLEM = "application/problem+json"
# float32 TTT updates differ in the last bits between thread pools (CLI process vs worker thread);
# anything beyond 1e-6 would be a real difference.
BPB_TOL = 1e-6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A small cap so an over-cap submission is cheap to make (the tiny artifact is ~134 kB).
    yield from embedded_server(tmp_path_factory, "embedded", GOLFCHECK_MAX_FILE_BYTES="3000000",
                               GOLFCHECK_MAX_REQUEST_BYTES="4000000", GOLFCHECK_CAP_BYTES="300000")


@pytest.fixture(scope="module")
def alice(server: Server) -> str:
    return server.token("submitter", "alice")


@pytest.fixture(scope="module")
def published(server: Server, alice: str, tiny: dict[str, Any]) -> dict[str, Any]:
    """One submission through `golfcheck submit --wait` (CLI → HTTP → worker → verdict)."""
    return publish(server, alice, tiny)


def assert_problem(resp: Any, status: int, kind: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body = resp.json()
    assert body["type"] == f"urn:golfcheck:problem:{kind}"
    assert body["status"] == status and body["title"]
    return body  # type: ignore[no-any-return]


# -- the happy path --------------------------------------------------------------------------------


def test_token_create_prints_token_alone_on_last_line(server: Server) -> None:
    out = server.cli("token", "create", "--role", "reviewer", "--name", "rita")
    last = out.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("gc_") and " " not in last
    with server.client(last) as c:
        assert c.get("/api/v1/submissions").status_code == 200


def test_verdict_bpb_equals_golfcheck_evaluate(published: dict[str, Any], tiny: dict[str, Any]) -> None:
    assert published["state"] == "published"
    assert published["verdict"]["status"] == "pass"
    assert published["measured_val_bpb"] == pytest.approx(tiny["expected"]["val_bpb"], abs=BPB_TOL)
    assert published["measured"]["val_loss"] == pytest.approx(tiny["expected"]["val_loss"], abs=BPB_TOL)
    rules = {r["rule"]: r["status"] for r in published["verdict"]["rules"]}
    assert rules["config.legal"] == rules["size.cap"] == rules["artifact.integrity"] == "pass"
    ts = published["timestamps"]
    assert all(ts[s] for s in ("received", "queued", "checking", "evaluating", "scored", "published"))
    sizes = published["sizes"]
    assert sizes["total_bytes"] == tiny["artifact"].stat().st_size + tiny["code"].stat().st_size
    assert sizes["headroom_bytes"] == sizes["cap_bytes"] - sizes["total_bytes"]


def test_chunk_records_match_the_evaluation(server: Server, alice: str, published: dict[str, Any],
                                            tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        body = c.get(f"/api/v1/submissions/{published['id']}/chunks").json()
    expected = tiny["expected"]["chunks"]
    assert [ch["index"] for ch in body["chunks"]] == [ch["index"] for ch in expected]
    assert body["chunks"][-1]["running_bpb"] == pytest.approx(tiny["expected"]["val_bpb"], abs=BPB_TOL)
    assert [ch["tokens_scored"] for ch in body["chunks"]] == [ch["tokens_scored"] for ch in expected]


def test_leaderboard_lists_it_with_etag(server: Server, published: dict[str, Any]) -> None:
    with server.client() as c:
        resp = c.get("/api/v1/leaderboard", params={"track": "track_10min_16mb"})
        assert resp.status_code == 200
        assert "max-age" in resp.headers["cache-control"]
        entries = resp.json()["verified"]["entries"]
        assert [e["submission_id"] for e in entries] == [published["id"]]
        assert entries[0]["rank"] == 1 and entries[0]["status"] == "verified"
        again = c.get("/api/v1/leaderboard", params={"track": "track_10min_16mb"},
                      headers={"If-None-Match": resp.headers["etag"]})
        assert again.status_code == 304
    out = server.cli("leaderboard", "--json")
    board = json.loads(out.stdout)
    assert board["verified"]["entries"][0]["val_bpb"] == published["measured_val_bpb"]


def test_same_inputs_again_return_the_existing_submission(server: Server, alice: str, published: dict[str, Any],
                                                          tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = upload(c, tiny)
    assert resp.status_code == 200
    assert resp.json()["id"] == published["id"] and resp.json()["duplicate"] is True


def test_status_command(server: Server, alice: str, published: dict[str, Any]) -> None:
    out = server.cli("status", published["id"], "--server", server.url, "--token", alice)
    assert "published" in out.stdout and f"{published['measured_val_bpb']:.6f}" in out.stdout


def test_metrics(server: Server, published: dict[str, Any]) -> None:
    with server.client() as c:
        text = c.get("/metrics").text
    assert 'golfcheck_submissions{state="published"}' in text
    assert 'golfcheck_queue_depth{queue="eval"}' in text
    assert "golfcheck_evaluation_seconds_total" in text
    assert "golfcheck_http_request_duration_seconds_bucket" in text


def test_bundle_upload_and_rejection_for_an_illegal_config(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    """A records folder as one .tar.gz; its config is illegal JSON-wise fine but not runnable."""
    bad = json.loads(json.dumps(TINY_CONFIG))
    bad["eval"]["stride"] = 64  # stride == seq_len is illegal for score-first TTT
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("final_model.int6.ptz", tiny["artifact"].read_bytes()),
                           ("train_gpt.py", tiny["code"].read_bytes()),
                           ("eval.json", json.dumps(bad).encode()),
                           ("submission.json", json.dumps({"name": "Bundle", "author": "A", "val_bpb": 1.2}).encode()),
                           ("../escape.txt", b"never written by name")):
            info = tarfile.TarInfo(f"2026-05-02_Bundle/{name}" if not name.startswith("..") else name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", files={"bundle": ("b.tar.gz", buf.getvalue(), "application/gzip")})
        assert resp.status_code == 202, resp.text
        body = wait_final(c, resp.json()["id"])
    assert body["state"] == "rejected"
    assert body["verdict"]["reason_kind"] == "bad-config"
    assert "stride" in body["verdict"]["reason"]
    assert body["name"] == "Bundle" and body["claimed_val_bpb"] == 1.2
    assert {f["role"] for f in body["files"]} >= {"artifact", "code", "config", "submission_json", "bundle"}


PRE_EVAL_TTT = """
import torch


def adapt_on_val(model, val_tokens, epochs=4):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for _ in range(epochs):
        for i in range(0, val_tokens.numel() - 65, 64):
            seq = val_tokens[i:i + 65].long()
            loss = model(seq[:-1][None], seq[1:][None])
            opt.zero_grad()
            loss.backward()
            opt.step()


def score(model, val_tokens):
    total_loss = 0.0
    with torch.no_grad():
        for i in range(0, val_tokens.numel() - 65, 64):
            seq = val_tokens[i:i + 65].long()
            total_loss += model(seq[:-1][None], seq[1:][None]).item()
    return total_loss


def main(model, val_tokens):
    adapt_on_val(model, val_tokens)
    return score(model, val_tokens)


if __name__ == "__main__":
    main(torch.nn.Linear(2, 2), None)
"""


def _upload_parts(c: Any, artifact: bytes, code: bytes) -> dict[str, Any]:
    resp = c.post("/api/v1/submissions", files={"artifact": ("final_model.int6.ptz", artifact),
                                                "code": ("train_gpt.py", code),
                                                "config": ("eval.json", json.dumps(TINY_CONFIG).encode())})
    assert resp.status_code == 202, resp.text
    return wait_final(c, resp.json()["id"])


def test_rejected_over_the_cap(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        body = _upload_parts(c, tiny["artifact"].read_bytes(), b"#" * 200_000)
    assert body["state"] == "rejected" and body["verdict"]["reason_kind"] == "over-cap"
    assert body["sizes"]["within_cap"] is False and body["sizes"]["headroom_bytes"] < 0
    assert body["measured"] is None


def test_rejected_bad_artifact(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        body = _upload_parts(c, b"this is not an artifact at all", tiny["code"].read_bytes())
    assert body["state"] == "rejected"
    assert body["verdict"]["reason_kind"].startswith("artifact")
    assert {r["rule"]: r["status"] for r in body["verdict"]["rules"]}["artifact.integrity"] == "fail"


def test_rejected_by_static_code_review(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        body = _upload_parts(c, tiny["artifact"].read_bytes(), PRE_EVAL_TTT.encode())
    assert body["state"] == "rejected"
    assert body["verdict"]["reason_kind"] == "rule:code.ttt-pre-eval"
    rule = next(r for r in body["verdict"]["rules"] if r["rule"] == "code.ttt-pre-eval")
    assert rule["status"] == "fail" and rule["evidence"][0]["line"] > 0


# -- bad requests ---------------------------------------------------------------------------------


def test_missing_token(server: Server) -> None:
    with server.client() as c:
        body = assert_problem(c.get("/api/v1/submissions/x"), 401, "unauthorized")
    assert "Bearer" in body["detail"]


def test_wrong_token(server: Server) -> None:
    with server.client("gc_not-a-real-token") as c:
        assert_problem(c.post("/api/v1/submissions", files={"artifact": ("a", b"x")}), 401, "invalid-token")


def test_revoked_token(server: Server) -> None:
    token = server.token("submitter", "rev")
    server.cli("token", "revoke", "--name", "rev")
    with server.client(token) as c:
        assert_problem(c.get("/api/v1/submissions"), 401, "invalid-token")


def test_no_artifact(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", files={"code": ("train_gpt.py", tiny["code"].read_bytes())})
    assert assert_problem(resp, 422, "missing-field")["field"] == "artifact"


def test_artifact_sent_as_text(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", data={"artifact": "not a file"},
                      files={"code": ("train_gpt.py", tiny["code"].read_bytes())})
    assert_problem(resp, 422, "invalid-field")


def test_unknown_field(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", files={"artefact": ("a.ptz", b"x")})
    assert_problem(resp, 422, "unknown-field")


def test_not_multipart(server: Server, alice: str) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", json={"artifact": "x"})
    assert_problem(resp, 415, "unsupported-media-type")


def test_malformed_json_config(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", data={"config": "{not json"},
                      files={"artifact": ("a.ptz", tiny["artifact"].read_bytes()),
                             "code": ("train_gpt.py", tiny["code"].read_bytes())})
    assert_problem(resp, 422, "bad-config")


def test_config_not_an_object(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", data={"config": "[1, 2]"},
                      files={"artifact": ("a.ptz", tiny["artifact"].read_bytes()),
                             "code": ("train_gpt.py", tiny["code"].read_bytes())})
    assert_problem(resp, 422, "bad-config")


def test_oversize_file_is_413(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    blobs = Path(server.env["GOLFCHECK_DATA_DIR"]) / "blobs"
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", files={"artifact": ("big.ptz", b"\0" * 3_500_000),
                                                    "code": ("train_gpt.py", b"x")})
    assert assert_problem(resp, 413, "payload-too-large")["limit_bytes"] == 3_000_000
    assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == before


def test_declared_oversize_body_refused_before_reading(server: Server, alice: str) -> None:
    """The 413 comes back although not one byte of the (announced 1 GB) body was sent."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall((f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n"
                   "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n", 1)[0]
    assert b" 413 " in head, data[:300]
    assert b"application/problem+json" in data


def test_unknown_submission(server: Server, alice: str) -> None:
    with server.client(alice) as c:
        assert_problem(c.get("/api/v1/submissions/00000000-0000-0000-0000-000000000000"), 404, "not-found")
        assert_problem(c.get("/api/v1/submissions/00000000-0000-0000-0000-000000000000/chunks"), 404, "not-found")


def test_submitter_cannot_read_anothers_submission(server: Server, published: dict[str, Any]) -> None:
    mallory = server.token("submitter", "mallory")
    with server.client(mallory) as c:
        assert_problem(c.get(f"/api/v1/submissions/{published['id']}"), 403, "forbidden")
        assert_problem(c.get(f"/api/v1/submissions/{published['id']}/chunks"), 403, "forbidden")
        assert published["id"] not in c.get("/api/v1/submissions").text
    reviewer = server.token("reviewer", "rosa")
    with server.client(reviewer) as c:
        assert c.get(f"/api/v1/submissions/{published['id']}").status_code == 200


def test_bad_query_parameter(server: Server) -> None:
    with server.client() as c:
        assert_problem(c.get("/api/v1/leaderboard", params={"limit": "many"}), 422, "validation-error")
        assert_problem(c.get("/no/such/route"), 404, "not-found")


# -- historical records ----------------------------------------------------------------------------

SHARED_RECORDS = RECORDS  # copied from ../shared


def test_ingest_is_idempotent_and_fills_the_claimed_section(server: Server, tmp_path: Path) -> None:
    root = tmp_path / "records" / "track_10min_16mb"
    root.mkdir(parents=True)
    picked = sorted(p for p in (SHARED_RECORDS / "track_10min_16mb").iterdir() if (p / "submission.json").exists())[:3]
    for p in picked:
        shutil.copytree(p, root / p.name)
    first = json.loads(server.cli("ingest", str(tmp_path / "records"), "--json").stdout)
    assert sorted(first["added"]) == sorted(p.name for p in picked)
    second = json.loads(server.cli("ingest", str(tmp_path / "records"), "--json").stdout)
    assert second["added"] == second["updated"] == [] and len(second["unchanged"]) == 3
    with server.client() as c:
        board = c.get("/api/v1/leaderboard", params={"track": "track_10min_16mb"}).json()
    claimed = board["claimed_only"]["entries"]
    assert {e["folder"] for e in claimed} == {p.name for p in picked}
    assert all(e["status"] == "claimed" and e["verdict"] for e in claimed)
    assert all({"track", "folder", "name", "author", "val_bpb", "rank"} <= set(e) for e in claimed)
    assert "claimed" in board["claimed_only"]["note"]
    ranked = [e for e in claimed if e["rank"] is not None]
    assert [e["rank"] for e in ranked] == sorted(e["rank"] for e in ranked)
    assert all(e["status"] == "verified" for e in board["verified"]["entries"])
