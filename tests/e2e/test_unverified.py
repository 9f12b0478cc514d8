"""Nothing unverified looks verified (issue 11, part 2), end to end through real servers.

Two servers with the embedded worker score the tiny record with its true claim:
- `demo`: the quick-demo setting GOLFCHECK_MAX_VAL_TOKENS (validation cut to 1024 targets);
- `foreign`: full scoring, but of a validation set that is not the configured canonical one.
Neither result may be `pass`, ranked, published or shown as verified: not in the JSON, not on the
public leaderboard page or an entry page, not on the reviewer page, not in the CLI. The demo one is
labelled "demo" in each of those places. A reviewer cannot publish either or override its data rule.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.support.service import Server, base_env, start_server, upload, wait_final

DEMO_TOKENS = 1024


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("demo")
    srv = start_server(base_env(data, GOLFCHECK_MAX_VAL_TOKENS=str(DEMO_TOKENS)), data)
    yield srv
    srv.proc.stop()


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("foreign")
    srv = start_server(base_env(data, GOLFCHECK_CANONICAL_VAL_SHA256="ab" * 32), data)
    yield srv
    srv.proc.stop()


def _scored(server: Server, tiny: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    alice = server.token("submitter", "alice")
    with server.client(alice) as c:
        resp = upload(c, tiny)
        assert resp.status_code == 202, resp.text
        return wait_final(c, resp.json()["id"]), alice, server.token("reviewer", "rita")


@pytest.fixture(scope="module")
def demo_run(demo: Server, tiny: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    return _scored(demo, tiny)


@pytest.fixture(scope="module")
def foreign_run(foreign: Server, tiny: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    return _scored(foreign, tiny)


def _rules(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in body["verdict"]["rules"]}


def test_demo_json_is_labelled_and_never_pass(demo_run: tuple[dict[str, Any], str, str], tiny: dict[str, Any]) -> None:
    body, _, _ = demo_run
    assert body["state"] == "scored" and body["verdict"]["status"] == "unverified"
    assert body["verification"]["label"] == "demo" and body["verification"]["verified"] is False
    m = body["measured"]
    assert m["demo"] is True and m["coverage"] == "demo" and m["max_val_tokens"] == DEMO_TOKENS
    # What it ran on is stored and shown: the shards' fingerprint, tokens and bytes scored.
    assert m["val_sha256"] == tiny["val_sha256"] and m["canonical_val_sha256"] == tiny["val_sha256"]
    assert 0 < m["tokens_scored"] and m["total_targets"] <= DEMO_TOKENS < m["val_tokens"]
    assert m["bytes_scored"] > 0 and m["canonical_bytes"] is None
    rules = _rules(body)
    assert rules["data.canonical"]["status"] == "warn" and "demo" in rules["data.canonical"]["message"]
    # The claim is never compared with a cut run: reproduction is skipped, so nothing can pass.
    assert rules["repro.bpb"]["status"] == "skip"


def test_demo_is_not_on_the_board(demo: Server, demo_run: tuple[dict[str, Any], str, str]) -> None:
    body, _, _ = demo_run
    with demo.client() as c:
        board = c.get("/api/v1/leaderboard", params={"track": body["track"]}).json()
        page = c.get("/leaderboard", params={"track": body["track"]})
        entry = c.get(f"/entries/{body['id']}")
    assert board["verified"]["entries"] == [] and board["demo"] is True
    assert f"GOLFCHECK_MAX_VAL_TOKENS={DEMO_TOKENS}" in board["demo_note"]
    assert page.status_code == 200 and "demo-banner" in page.text and body["id"] not in page.text
    assert entry.status_code == 404  # never public


def test_demo_cli_says_demo(demo: Server, demo_run: tuple[dict[str, Any], str, str]) -> None:
    body, alice, _ = demo_run
    out = demo.cli("status", body["id"], "--server", demo.url, "--token", alice).stdout
    assert "DEMO: not verified" in out and re.search(r"verified:\s+demo", out)
    assert body["measured"]["val_sha256"] in out
    board = demo.cli("leaderboard").stdout
    assert board.startswith("DEMO:") and "(none yet)" in board
    as_json = json.loads(demo.cli("status", body["id"], "--server", demo.url, "--token", alice, "--json").stdout)
    assert as_json["verification"]["label"] == "demo"


def _reviewer(server: Server, token: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    resp = client.post("/review/login", data={"token": token, "csrf_token": csrf.group(1), "next": "/review"})
    assert resp.status_code == 303
    queue = client.get("/review")
    found = re.search(r'name="csrf_token" value="([^"]+)"', queue.text)
    assert found
    return client, found.group(1)


def test_reviewer_page_says_demo_and_cannot_publish(demo: Server, demo_run: tuple[dict[str, Any], str, str]) -> None:
    body, _, rita = demo_run
    db = sqlite3.connect(Path(demo.env["GOLFCHECK_DATA_DIR"]) / "golfcheck.db")
    try:
        (canonical_id,) = db.execute("SELECT id FROM rule_results WHERE submission_id = ? AND rule = 'data.canonical'",
                                     (body["id"],)).fetchone()
    finally:
        db.close()
    client, csrf = _reviewer(demo, rita)
    try:
        page = client.get(f"/review/submissions/{body['id']}")
        assert page.status_code == 200
        assert 'badge v-demo">demo' in page.text and body["measured"]["val_sha256"] in page.text
        refused = client.post(f"/review/submissions/{body['id']}/publish", data={"csrf_token": csrf, "reason": "ship it"})
        assert refused.status_code == 409 and "verdict is not pass" in refused.text
        # The coverage rule records a measured fact: overriding it to pass is refused.
        override = client.post(f"/review/submissions/{body['id']}/override",
                               data={"csrf_token": csrf, "reason": "looks fine", "rule_result_id": str(canonical_id),
                                     "status": "pass"})
        assert override.status_code == 409 and "cannot be overridden" in override.text
    finally:
        client.close()
    with demo.client(rita) as c:
        again = c.get(f"/api/v1/submissions/{body['id']}").json()
    assert again["state"] == "scored" and again["verdict"]["status"] == "unverified"


def test_foreign_validation_set_is_unverified(foreign: Server, foreign_run: tuple[dict[str, Any], str, str],
                                              tiny: dict[str, Any]) -> None:
    body, alice, _ = foreign_run
    assert body["state"] == "scored" and body["verdict"]["status"] == "unverified"
    assert body["verification"]["label"] == "unverified"
    assert body["measured"]["coverage"] == "non-canonical" and body["measured"]["demo"] is False
    assert body["measured"]["val_sha256"] == tiny["val_sha256"] != body["measured"]["canonical_val_sha256"]
    assert _rules(body)["data.canonical"]["status"] == "warn" and _rules(body)["repro.bpb"]["status"] == "skip"
    with foreign.client() as c:
        assert c.get("/api/v1/leaderboard", params={"track": body["track"]}).json()["verified"]["entries"] == []
        assert c.get(f"/entries/{body['id']}").status_code == 404
    out = foreign.cli("status", body["id"], "--server", foreign.url, "--token", alice).stdout
    assert re.search(r"verified:\s+unverified", out) and "non-canonical" in out
