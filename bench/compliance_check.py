"""Time `golfcheck check` (check_record) over every real records folder; prints per-folder times.

Usage: .venv/bin/python bench/compliance_check.py [RECORDS_ROOT]   (default tests/data/records)
Target: under 2 s per folder. Nothing is asserted; numbers go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gepa.compliance import check_record  # noqa: E402


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "records"
    folders = sorted(p for p in root.glob("*/*") if p.is_dir())
    times = []
    for folder in folders:
        t0 = time.perf_counter()
        verdict = check_record(folder)
        dt = time.perf_counter() - t0
        times.append(dt)
        c = verdict.counts()
        print(f"{dt * 1000:8.1f} ms  {verdict.status:4}  p{c['pass']:02d} w{c['warn']:02d} f{c['fail']:02d} s{c['skip']:02d}  "
              f"{folder.parent.name}/{folder.name}")
    if times:
        print(f"{len(times)} folders: total {sum(times):.2f} s, max {max(times) * 1000:.1f} ms, "
              f"mean {sum(times) / len(times) * 1000:.1f} ms per folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
