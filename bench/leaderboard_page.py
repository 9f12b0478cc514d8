"""Time the public leaderboard HTML page with every ingested record on it.

Builds a fresh SQLite database in a temp directory, ingests the 60 real record folders with the
service's ingest (`gepa.compliance.load_record` / `rank_entries` under the hood), adds the browser
tests' seeded submissions (one verified entry), starts the real server (`uvicorn`, one process,
as in the browser tests) and times GET requests over HTTP from this process:

    /leaderboard?track=all   every record of every track on one page (60 claimed + 1 verified rows)
    /leaderboard             the default track (46 + 1 rows)
    /entries/{id}            a verified entry page with its per-chunk charts
    /records/{id}            a claimed record page with its rule results

Usage: .venv/bin/python bench/leaderboard_page.py [--requests N]
Target: the all-tracks leaderboard under 200 ms. Nothing is asserted; numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from api.cli.service import ingest  # noqa: E402
from api.core import migrate  # noqa: E402
from api.core.db import dispose_engines  # noqa: E402
from api.core.settings import Settings  # noqa: E402
from tests.support.browser_seed import seed  # noqa: E402 - the seeding helper the browser tests use


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(client: httpx.Client, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100, help="timed requests per page (after 5 warm-up ones)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="golfcheck-bench-") as tmp:
        env = {**os.environ, "GOLFCHECK_DATA_DIR": tmp, "GOLFCHECK_DATABASE_URL": f"sqlite:///{tmp}/golfcheck.db",
               "GOLFCHECK_EMBEDDED_WORKER": "0", "GOLFCHECK_LOG_JSON": "0", "GOLFCHECK_LOG_LEVEL": "WARNING"}
        settings = Settings.from_env(env)
        migrate.upgrade(settings)
        t0 = time.perf_counter()
        summary = ingest(settings, ROOT / "tests" / "data" / "records")
        ingest_s = time.perf_counter() - t0
        seeded = seed(settings)
        dispose_engines()

        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory", "--host",
                                 "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=30) as c:
                page = c.get("/leaderboard?track=all").text
                rows = len(re.findall(r'<tr class="(?:claimed|verified)"', page))
                record_id = re.search(r'href="/records/(\d+)"', page).group(1)  # type: ignore[union-attr]
                pages = [("/leaderboard?track=all", f"all tracks, {rows} rows"),
                         ("/leaderboard", "default track"),
                         (f"/entries/{seeded.published_id}", "verified entry, 24-chunk charts"),
                         (f"/records/{record_id}", "claimed record page")]
                print(f"ingest: {summary['folders']} folders in {ingest_s:.2f} s; page size (all tracks) "
                      f"{len(page.encode()) / 1000:.1f} kB")
                print(f"{'page':<48} {'min':>7} {'median':>7} {'p95':>7} {'max':>7}   (ms, {args.requests} requests)")
                for path, what in pages:
                    _time(c, path, 5)  # warm-up: template compilation, connection, caches
                    ts = sorted(_time(c, path, args.requests))
                    p95 = ts[min(len(ts) - 1, int(len(ts) * 0.95))]
                    print(f"{what:<48} {ts[0]:7.1f} {statistics.median(ts):7.1f} {p95:7.1f} {ts[-1]:7.1f}")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
