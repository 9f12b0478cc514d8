"""Fixtures and helpers for the service tests: real PostgreSQL, real Redis, real processes.

- `pg_url`: a fresh PostgreSQL database for this test run (dropped at the end).
- `redis_prefix`: a unique Redis key prefix, so parallel runs on one Redis do not share queues.
- `tiny`: a tiny records folder (artifact made with `golfcheck make-artifact`, config,
  train_gpt.py, README, a log and a submission.json claiming the BPB that `golfcheck evaluate`
  reports for it) and that evaluation, on the test servers' canonical validation set.
- `canonical_val(dir)`: the test servers' canonical validation set: the first MAX_VAL_TOKENS
  targets of the bundled shard as a shard of its own, scored in full (no demo cut), with its
  sha256 configured as GOLFCHECK_CANONICAL_VAL_SHA256, so a test result can be verified.
- `Proc` / `start_server` / `start_worker`: `golfcheck serve` and `celery worker` subprocesses
  with bounded start-up waits, killed (process group) at teardown.
- `TcpProxy`: a TCP forwarder in front of PostgreSQL that a test can cut, to make the database
  "briefly unavailable" for the API without touching the real server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import psycopg
import pytest
from tests.support.paths import REPO
from api.core.db import dispose_engines
import redis
from gepa.shards import BUNDLED_VAL_GLOB, fingerprint, read_shard, shard_paths, write_shard

BIN = Path(sys.executable).parent
GOLFCHECK = str(BIN / "golfcheck")
CELERY = str(BIN / "celery")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
MAX_VAL_TOKENS = 2048  # targets in the test servers' canonical validation set
START_TIMEOUT = 90.0
FINAL_STATES = ("published", "rejected", "failed")

TINY_CONFIG = {
    "model": {"vocab_size": 1024, "num_layers": 1, "model_dim": 64, "num_heads": 2, "num_kv_heads": 1,
              "mlp_hidden": 128, "bigram_buckets": 64, "bigram_embed_dim": 16, "rope_dims": 16,
              "rope_train_seq_len": 64, "xsa_layers": 1, "ve_enabled": False, "ve_layers": []},
    "eval": {"mode": "ttt", "seq_len": 64, "stride": 32, "batch_seqs": 8},
    "ttt": {"epochs": 1, "chunk_tokens": 512, "freeze_blocks": 0, "batch_seqs": 8},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy; the timeout only bounds a hung test, it asserts nothing."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


# -- databases -----------------------------------------------------------------------------------


def _create_db() -> str:
    name = f"golfcheck_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_db(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def pg_dbname() -> Iterator[str]:
    name = _create_db()
    yield name
    dispose_engines()
    _drop_db(name)


@pytest.fixture(scope="session")
def pg_url(pg_dbname: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_dbname}"


@pytest.fixture()
def fresh_pg_url() -> Iterator[str]:
    """A database of its own for a test that needs an empty schema."""
    name = _create_db()
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    dispose_engines()
    _drop_db(name)


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    prefix = f"gctest-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


# -- tiny inputs ---------------------------------------------------------------------------------


def canonical_val(directory: Path) -> tuple[Path, str]:
    """(shard path, sha256) of the test servers' canonical validation set, written under `directory`."""
    path = directory / "canonical-val" / "fineweb_val_000000.bin"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_shard(path, read_shard(shard_paths(BUNDLED_VAL_GLOB)[0])[: MAX_VAL_TOKENS + 1])
    return path, fingerprint([path])


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("tiny")
    d = root / "2026-05-01_TinyTest"
    d.mkdir()
    val, val_sha = canonical_val(root)
    (d / "eval.json").write_text(json.dumps(TINY_CONFIG))
    (d / "train_gpt.py").write_text("# a tiny training script; golfcheck never runs it\nprint('train')\n")
    (d / "README.md").write_text("# Tiny test record\nA one-layer model made by `golfcheck make-artifact`.\n")
    subprocess.run([GOLFCHECK, "make-artifact", str(d / "final_model.int6.ptz"), "--config", str(d / "eval.json")],
                   check=True, capture_output=True, timeout=300)
    out = subprocess.run([GOLFCHECK, "evaluate", str(d / "final_model.int6.ptz"), "--config", str(d / "eval.json"),
                          "--val", str(val), "--json"],
                         check=True, capture_output=True, timeout=600, text=True)
    expected = json.loads(out.stdout)
    (d / "train_seed0.log").write_text(f"seed:0\nstep:1 val_bpb:9.0\nfinal_ttt_exact val_loss:{expected['val_loss']:.8f} "
                                       f"val_bpb:{expected['val_bpb']:.8f}\n")
    claim = {"name": "Tiny", "author": "tester", "github_id": "tester", "date": "2026-05-01", "track": "10min_16mb",
             "val_bpb": round(expected["val_bpb"], 8), "val_loss": round(expected["val_loss"], 8)}
    (d / "submission.json").write_text(json.dumps(claim))
    return {"dir": d, "artifact": d / "final_model.int6.ptz", "code": d / "train_gpt.py", "config": d / "eval.json",
            "log": d / "train_seed0.log", "expected": expected, "claim": claim, "val": val, "val_sha256": val_sha}


# -- processes -------------------------------------------------------------------------------------


class Proc:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(argv, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (pool children) goes too.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLFCHECK_")}
    val, val_sha = canonical_val(data_dir.parent)
    env.update({
        "GOLFCHECK_DATA_DIR": str(data_dir),
        # A small canonical set scored in full, so results can be verified (the demo cut,
        # GOLFCHECK_MAX_VAL_TOKENS, never verifies anything; tests/e2e/test_unverified.py cover it).
        "GOLFCHECK_VAL_GLOB": str(val),
        "GOLFCHECK_CANONICAL_VAL_SHA256": val_sha,
        "GOLFCHECK_HEARTBEAT_S": "0.5",
        "GOLFCHECK_STALE_AFTER_S": "6",
        "GOLFCHECK_REAPER_INTERVAL_S": "1",
        "GOLFCHECK_REQUEUE_AFTER_S": "10",
        "GOLFCHECK_LOG_JSON": "1",
        "GOLFCHECK_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The abuse limits are tested on their own (tests/hardening); elsewhere they stay out of
        # the way, and the public leaderboard is never served stale.
        "GOLFCHECK_DAILY_QUOTA": "1000",
        "GOLFCHECK_MAX_ACTIVE_PER_SUBMITTER": "1000",
        "GOLFCHECK_UPLOAD_RATE_PER_MIN": "10000",
        "GOLFCHECK_LEADERBOARD_CACHE_S": "0",
    })
    env.update(extra)
    return env


class Server:
    def __init__(self, proc: Proc, url: str, env: dict[str, str]):
        self.proc, self.url, self.env = proc, url, env

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a golfcheck command with this server's settings (same database, same data dir)."""
        return subprocess.run([GOLFCHECK, *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=check)

    def token(self, role: str = "submitter", name: str | None = None) -> str:
        out = self.cli("token", "create", "--role", role, "--name", name or f"{role}-{uuid.uuid4().hex[:6]}")
        return out.stdout.strip().splitlines()[-1]


def start_server(env: dict[str, str], log_dir: Path, *extra: str) -> Server:
    port = free_port()
    proc = Proc("serve", [GOLFCHECK, "serve", "--host", "127.0.0.1", "--port", str(port), *extra], env, log_dir)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"server exited:\n{proc.log()[-3000:]}")
        return httpx.get(url + "/readyz", timeout=2).status_code == 200

    try:
        wait_until(ready, START_TIMEOUT, "the server to become ready", interval=0.3)
    except BaseException:
        proc.stop()
        raise
    return Server(proc, url, env)


def start_worker(env: dict[str, str], log_dir: Path, queue: str, *extra: str) -> Proc:
    name = f"{queue}-{uuid.uuid4().hex[:6]}"
    argv = [CELERY, "-A", "worker.celery_app", "worker", "-Q", queue, "-n", f"{name}@%h", "--concurrency", "1",
            "--without-gossip", "--without-mingle", "-l", "INFO", *extra]
    proc = Proc(f"worker-{queue}", argv, env, log_dir)

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"worker exited:\n{proc.log()[-3000:]}")
        return " ready." in proc.log()

    try:
        wait_until(ready, START_TIMEOUT, f"the {queue} worker to become ready", interval=0.3)
    except BaseException:
        proc.stop()
        raise
    return proc


def upload(client: httpx.Client, tiny: dict[str, Any], *, submission_json: dict[str, Any] | None = None,
           config: dict[str, Any] | None = None, extra_code: str = "") -> httpx.Response:
    """Upload the tiny record field by field; `submission_json` defaults to its true claim."""
    submission_json = tiny["claim"] if submission_json is None else submission_json
    files: list[tuple[str, Any]] = [
        ("artifact", ("final_model.int6.ptz", tiny["artifact"].read_bytes(), "application/octet-stream")),
        ("code", ("train_gpt.py", tiny["code"].read_bytes() + extra_code.encode(), "text/x-python")),
        ("config", ("eval.json", json.dumps(config or TINY_CONFIG).encode(), "application/json")),
        ("logs", ("train_seed0.log", tiny["log"].read_bytes(), "text/plain")),
    ]
    if submission_json is not None:
        files.append(("submission_json", ("submission.json", json.dumps(submission_json).encode(), "application/json")))
    return client.post("/api/v1/submissions", files=files)


def wait_final(client: httpx.Client, sid: str, timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/submissions/{sid}").json()
        # `scored` with a decided verdict is where an unverified (or failed) result stays.
        settled = body["state"] == "scored" and body["verdict"]["status"] in ("unverified", "fail")
        return body if body["state"] in FINAL_STATES or settled else None

    return wait_until(done, timeout, f"submission {sid} to finish", interval=0.5)  # type: ignore[no-any-return]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self._up = threading.Event()
        self._up.set()
        self._closed = False
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            conn = self._new_conn()
            with self._lock:
                self._socks |= {client, upstream}
            for a, b, to_server in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, conn, to_server), daemon=True).start()

    def _new_conn(self) -> dict[str, Any]:
        """Per-connection state shared by its two directions (for subclasses that inspect traffic)."""
        return {}

    def _forward(self, data: bytes, dst: socket.socket, conn: dict[str, Any], to_server: bool) -> bool:
        """Pass `data` on; a subclass may hold it back or cut. False ends this direction."""
        dst.sendall(data)
        return True

    def _pipe(self, src: socket.socket, dst: socket.socket, conn: dict[str, Any], to_server: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or not self._forward(data, dst, conn, to_server):
                    break
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
