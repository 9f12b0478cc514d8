"""One engine: `golfcheck check DIR` and the service give the same verdict and the same rule list,
rule by rule, for the same files (issue 11, part 1).

The service side is the real thing: `golfcheck serve` on PostgreSQL with a Celery `checks` worker
on Redis (no evaluation worker, so every submission stops after its checks). Inputs:
- every case of the hostile corpus (tests/hardening/test_hostile_corpus.py) that the API accepts
  and hands to the worker, uploaded field by field exactly as the corpus does;
- every real records folder in tests/data/records (their submission.json and logs), completed with
  the tiny artifact, a train_gpt.py and eval.json so that the service accepts it, uploaded as a
  bundle with its track.
The CLI side runs `golfcheck check FOLDER --json --track TRACK` through the real dispatcher on the
same files laid out as a folder (one case also as a subprocess, to prove the installed command
says the same).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Iterator

import pytest
from tests.support.hardening import HServer, start_hserver, stop_hserver
from tests.support.service import GOLFCHECK, REDIS_URL, start_worker, wait_until
from tests.support.hostile_corpus import CASES, Ctx

from api.cli.main import main as cli_main
from tests.support.paths import RECORDS

RECORD_FOLDERS = sorted(p for p in RECORDS.glob("*/*") if p.is_dir())
ACCEPTED = [c for c in CASES if c.status == 202]
CHECKED_STATES = ("rejected", "queued")  # after the checks: rejected, or waiting for the evaluation


@pytest.fixture(scope="module")
def parity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HServer]:
    data = tmp_path_factory.mktemp("parity")
    h = start_hserver(data, "--no-worker", GOLFCHECK_BROKER_URL=REDIS_URL,
                      GOLFCHECK_BROKER_PREFIX=f"gcparity-{uuid.uuid4().hex[:8]}:")
    worker = None
    try:
        worker = start_worker(h.server.env, data, "checks")
        yield h
    finally:
        if worker is not None:
            worker.stop()
        stop_hserver(h)


@pytest.fixture(scope="module")
def token(parity_server: HServer) -> str:
    return parity_server.server.token("submitter", "parity")


def _after_checks(h: HServer, token: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    with h.server.client(token) as c:
        resp = c.post("/api/v1/submissions", **kwargs)
        assert resp.status_code == 202, resp.text[:500]
        sid = resp.json()["id"]

        def checked() -> dict[str, Any] | None:
            body = c.get(f"/api/v1/submissions/{sid}").json()
            done = body["state"] in CHECKED_STATES and any(a["stage"] == "checks" and a["outcome"] != "running"
                                                          for a in body["attempts"])
            return body if done else None

        return wait_until(checked, 300, f"the checks of {sid}")  # type: ignore[no-any-return]


def _cli(folder: Path, track: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = cli_main(["check", str(folder), "--json", "--track", track])
    return rc, json.loads(out.getvalue())


def _files_to_folder(kwargs: dict[str, Any], folder: Path) -> None:
    """Lay an upload's multipart fields out as the records folder the service rebuilds from them."""
    folder.mkdir(parents=True)
    names = {"config": "eval.json", "submission_json": "submission.json"}
    for field, (name, data, *_rest) in kwargs["files"]:
        path = folder / names.get(field, Path(name).name)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _compare(server: dict[str, Any], rc: int, cli: dict[str, Any]) -> None:
    srv_rules = [(r["rule"], r["status"], r["message"]) for r in server["verdict"]["rules"]]
    cli_rules = [(r["rule"], r["status"], r["summary"]) for r in cli["results"] if r["stage"] == "checks"]
    assert srv_rules == cli_rules
    # The score-stage rules wait for a measurement on both sides.
    assert [(r["rule"], r["status"]) for r in cli["results"] if r["stage"] == "score"] == \
        [("data.canonical", "skip"), ("repro.bpb", "skip")]
    failed = [r for r in cli["results"] if r["status"] == "fail"]
    if failed:
        assert server["state"] == "rejected" and rc == 1
        assert server["verdict"]["reason_kind"] == failed[0]["kind"]
    else:
        assert server["state"] == "queued" and server["queue"] == "eval" and rc == 0
    assert server["sizes"]["total_bytes"] == cli["facts"]["counted_bytes"]


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.name for c in ACCEPTED])
def test_hostile_case_same_verdict(case: Any, parity_server: HServer, token: str, tiny: dict[str, Any],
                                   tmp_path: Path) -> None:
    kwargs = case.build(Ctx(tiny))
    server = _after_checks(parity_server, token, kwargs)
    folder = tmp_path / "track_10min_16mb" / "submission"
    _files_to_folder(kwargs, folder)
    rc, cli = _cli(folder, server["track"])
    _compare(server, rc, cli)
    assert server["verdict"]["reason_kind"] == case.kind  # what the corpus expects, on both sides


def _record_bundle(record: Path, tiny: dict[str, Any], dest: Path) -> bytes:
    """The record's own files plus what the service needs to accept it; written to `dest` too."""
    extra = {"final_model.int6.ptz": tiny["artifact"].read_bytes(), "eval.json": tiny["config"].read_bytes(),
             "train_gpt.py": tiny["code"].read_bytes() + f"\n# {record.name} {uuid.uuid4().hex}\n".encode()}
    files = {p.relative_to(record).as_posix(): p.read_bytes() for p in sorted(record.rglob("*")) if p.is_file()}
    files.update(extra)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{record.name}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(data)
    return buf.getvalue()


@pytest.mark.parametrize("record", RECORD_FOLDERS, ids=[p.name[:50] for p in RECORD_FOLDERS])
def test_real_record_shape_same_verdict(record: Path, parity_server: HServer, token: str, tiny: dict[str, Any],
                                        tmp_path: Path) -> None:
    track = record.parent.name
    folder = tmp_path / track / record.name
    folder.mkdir(parents=True)
    bundle = _record_bundle(record, tiny, folder)
    server = _after_checks(parity_server, token, {"files": [("bundle", (f"{record.name}.tar.gz", bundle))],
                                                  "data": {"track": track}})
    rc, cli = _cli(folder, server["track"])
    _compare(server, rc, cli)


def test_installed_command_says_the_same(parity_server: HServer, token: str, tiny: dict[str, Any],
                                         tmp_path: Path) -> None:
    record = RECORDS / "track_10min_16mb" / "2026-04-09_A2_Muon097_3Seed"
    folder = tmp_path / "track_10min_16mb" / record.name
    folder.mkdir(parents=True)
    bundle = _record_bundle(record, tiny, folder)
    server = _after_checks(parity_server, token, {"files": [("bundle", (f"{record.name}.tar.gz", bundle))],
                                                  "data": {"track": "track_10min_16mb"}})
    proc = subprocess.run([GOLFCHECK, "check", str(folder), "--json", "--track", "track_10min_16mb"],
                          capture_output=True, text=True, timeout=300)
    _compare(server, proc.returncode, json.loads(proc.stdout))
