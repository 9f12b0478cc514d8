"""Load on the API: the public leaderboard under 64 concurrent connections, and 16 concurrent
16 MB uploads (throughput and the API process's peak memory).

Production-like: PostgreSQL (127.0.0.1:5432, a fresh database dropped at the end) and
`uvicorn --factory api.main:app_factory --workers 2`, JSON logs at WARNING, no access log. The
leaderboard database holds 1,000 published, ranked submissions on one track.

    .venv/bin/python bench/api_load.py [--duration 20] [--skip-uploads] [--skip-leaderboard]

Leaderboard: Debian's `wrk` (apt-get install wrk) with -t2 -c64 --latency when it is installed,
else an asyncio + httpx client (which then shares the two cores with the server and reports lower
numbers). Goal: >= 1,000 requests/s with p99 <= 50 ms.
Uploads: 16 threads each POST a distinct 16 MB artifact at once, to a one-process server; the
server's VmHWM (peak resident set) is read from /proc before and after, and the same is done with
1 MB artifacts to show memory does not grow with upload size. Goal: peak under 300 MB.
Nothing is asserted; numbers go to BENCHMARKS.md and bench/results/api_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from api.core import migrate  # noqa: E402
from api.core.db import dispose_engines, session_scope, utcnow  # noqa: E402
from api.core.models import Blob, Submission, User  # noqa: E402
from api.core.settings import Settings  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TRACK = "track_10min_16mb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(db_url: str, data_dir: Path, n: int) -> None:
    """n published, passing submissions with distinct BPBs, inserted directly (the pipeline is
    not what is measured)."""
    s = Settings(data_dir=data_dir, database_url=db_url)
    migrate.upgrade(s)
    now = utcnow()
    with session_scope(s) as session:
        uid = session.execute(insert(User).values(name="bench", role="submitter", created_at=now)
                              .returning(User.id)).scalar_one()
        session.execute(insert(Blob).values(sha256="0" * 64, size=1, path="00/00/" + "0" * 64, created_at=now))
        rows = [dict(id=str(uuid.uuid4()), submitter_id=uid, state="published", queue=None, attempt=2, stage_failures=0,
                     created_at=now - dt.timedelta(seconds=i), updated_at=now, artifact_sha256="0" * 64,
                     code_sha256="0" * 64, config_json="{}", config_sha256="0" * 64, dedupe_key=f"{i:064d}",
                     track=TRACK, name=f"Entry {i}", author=f"author{i % 37}", folder=f"2026-01-01_Entry{i}",
                     claimed_val_bpb=1.1 + i / 1e4, artifact_bytes=15_000_000, code_bytes=50_000,
                     counted_bytes=15_050_000, cap_bytes=16_000_000, measured_val_bpb=1.1 + i / 1e4 + 1e-5,
                     measured_val_loss=1.9, verdict="pass", chunks_done=10, chunks_total=10, flagged=False,
                     disqualified=False) for i in range(n)]
        session.execute(insert(Submission), rows)


HTTP_ARGS: list[str] = []  # --http h11: uvicorn's pure-Python parser and asyncio instead of httptools/uvloop


def start_uvicorn(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory", "--host",
                             "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log",
                             "--log-level", "warning", *HTTP_ARGS], env=env, cwd=ROOT, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server did not start:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


# -- leaderboard ---------------------------------------------------------------------------------------


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def wrk(url: str, duration: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"tool": "wrk -t2 -c%d -d%ds --latency" % (connections, duration),
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": _ms(lat["50"]), "p90_ms": _ms(lat["90"]), "p99_ms": _ms(lat["99"]),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
            "non_2xx": int(errors.group(1)) if errors else 0, "raw": out}


async def _py_load(url: str, duration: int, connections: int) -> dict[str, Any]:
    lat: list[float] = []
    bad = 0
    stop_at = time.monotonic() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one() -> None:
            nonlocal bad
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                r = await client.get(url)
                lat.append((time.perf_counter() - t0) * 1000)
                bad += r.status_code != 200
        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(connections)))
        elapsed = time.monotonic() - t0
    q = statistics.quantiles(lat, n=100)
    return {"tool": f"asyncio+httpx, {connections} concurrent", "requests_per_s": len(lat) / elapsed,
            "p50_ms": q[49], "p90_ms": q[89], "p99_ms": q[98], "requests": len(lat), "non_2xx": bad}


def leaderboard(env: dict[str, str], tmp: Path, duration: int) -> dict[str, Any]:
    proc, url = start_uvicorn(env, 2, tmp / "uvicorn-leaderboard.log")
    try:
        target = f"{url}/api/v1/leaderboard?track={TRACK}&limit=50"
        body = httpx.get(target).json()
        assert body["verified"]["total"] >= 1000, body["verified"]["total"]
        for _ in range(200):  # warm both workers' caches and connection pools
            httpx.get(target)
        run = wrk(target, duration, 64) if shutil.which("wrk") else asyncio.run(_py_load(target, duration, 64))
        run["entries"] = body["verified"]["total"]
        run["response_bytes"] = len(httpx.get(target).content)
        return run
    finally:
        stop(proc)


# -- uploads -----------------------------------------------------------------------------------------


def uploads(env: dict[str, str], tmp: Path, size: int, n: int = 16) -> dict[str, Any]:
    env = dict(env, GOLFCHECK_DAILY_QUOTA="100000", GOLFCHECK_MAX_ACTIVE_PER_SUBMITTER="100000",
               GOLFCHECK_UPLOAD_RATE_PER_MIN="100000", GOLFCHECK_DATA_DIR=str(tmp / f"data-{size}"))
    out = subprocess.run([str(Path(sys.executable).parent / "golfcheck"), "token", "create", "--role", "submitter", "--name",
                          f"uploader-{uuid.uuid4().hex[:6]}"], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True)
    token = out.stdout.strip().splitlines()[-1]
    proc, url = start_uvicorn(env, 1, tmp / f"uvicorn-upload-{size}.log")
    try:
        pid = proc.pid
        code = b"print('bench')\n"
        payloads = [os.urandom(size) for _ in range(n)]
        httpx.get(url + "/healthz")
        before = {"rss": vm(pid, "VmRSS"), "hwm": vm(pid, "VmHWM")}
        barrier = threading.Barrier(n)
        statuses: list[int] = []

        def one(i: int) -> None:
            files = [("artifact", ("final_model.int6.ptz", payloads[i], "application/octet-stream")),
                     ("code", ("train_gpt.py", code + f"# {i} {uuid.uuid4().hex}\n".encode(), "text/x-python"))]
            with httpx.Client(timeout=300, headers={"Authorization": f"Bearer {token}"}) as c:
                barrier.wait()
                statuses.append(c.post(url + "/api/v1/submissions", files=files).status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        after = {"rss": vm(pid, "VmRSS"), "hwm": vm(pid, "VmHWM")}
        return {"uploads": n, "bytes_each": size, "statuses": sorted(set(statuses)), "elapsed_s": elapsed,
                "throughput_MB_s": n * size / elapsed / 1e6, "uploads_per_s": n / elapsed,
                "rss_before_MB": before["rss"] / 1e6, "peak_rss_MB": after["hwm"] / 1e6,
                "peak_growth_MB": (after["hwm"] - before["hwm"]) / 1e6}
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--skip-uploads", action="store_true")
    ap.add_argument("--skip-leaderboard", action="store_true")
    ap.add_argument("--http", choices=("auto", "h11"), default="auto",
                    help="auto: httptools + uvloop when installed (uvicorn's fast path); h11: pure Python")
    args = ap.parse_args()
    if args.http == "h11":
        HTTP_ARGS.extend(["--http", "h11", "--loop", "asyncio"])
    db = f"golfcheck_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
    tmp = Path(tempfile.mkdtemp(prefix="golfcheck-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLFCHECK_")}
    env.update({"GOLFCHECK_DATABASE_URL": db_url, "GOLFCHECK_DATA_DIR": str(tmp / "data"),
                "GOLFCHECK_EMBEDDED_WORKER": "0", "GOLFCHECK_LOG_LEVEL": "WARNING", "GOLFCHECK_LOG_JSON": "1"})
    report: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs", "python": sys.version.split()[0],
                              "http": args.http}
    try:
        seed(db_url, tmp / "data", args.entries)
        if not args.skip_leaderboard:
            report["leaderboard"] = leaderboard(env, tmp, args.duration)
            lb = report["leaderboard"]
            print(f"leaderboard ({lb['entries']} entries, {lb['response_bytes']} B): {lb['requests_per_s']:.0f} req/s, "
                  f"p50 {lb['p50_ms']:.1f} ms, p90 {lb['p90_ms']:.1f} ms, p99 {lb['p99_ms']:.1f} ms, "
                  f"non-2xx {lb['non_2xx']} [{lb['tool']}]")
        if not args.skip_uploads:
            report["uploads"] = [uploads(env, tmp, size) for size in (1_000_000, 16_000_000)]
            for u in report["uploads"]:
                print(f"{u['uploads']} x {u['bytes_each'] / 1e6:.0f} MB uploads: {u['elapsed_s']:.2f} s, "
                      f"{u['throughput_MB_s']:.0f} MB/s, statuses {u['statuses']}, API RSS {u['rss_before_MB']:.0f} MB "
                      f"before, peak {u['peak_rss_MB']:.0f} MB (+{u['peak_growth_MB']:.0f} MB)")
    finally:
        dispose_engines()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        shutil.rmtree(tmp, ignore_errors=True)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    report.get("leaderboard", {}).pop("raw", None)
    (ROOT / "bench" / "results" / f"api_load_{args.http}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
