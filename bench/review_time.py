"""Time the static code review per script: the dev set's scripts and a record-sized script.

Usage: .venv/bin/python bench/review_time.py DEVSET [--repeat N] [--size-kb KB] [--json OUT]

DEVSET is a development-set folder as bench/review_devset.py takes it: one with manifest.json, or a
folder of merged record scripts laid out as `<track>/<record folder>/` (e.g. /work/devset/merged).
For every entry the entry's files are reviewed with `scan_bundle` (decoding, unwrapping, taint tracking, every rule) under the
defaults plus the entry's settings, `--repeat` times; the median is its time. The same run
times parsing the same files (`ast.parse`, with 3.12 f-strings through `pysyntax`) as the baseline, so the ratio review/parse is comparable
across machines.

The largest entry is reported on its own (on the merged set: the 158,381-char 2026-04-27 record).
With `--size-kb` the bench also builds a script of that size from this repository's own Python
sources followed by the largest entry and times it (every function in it is reviewed).
Times are CPU seconds (median of --repeat runs); the record-sized script's wall time is shown
too. Nothing is asserted; the numbers go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_devset import load_manifest  # noqa: E402
from gepa.compliance.pysyntax import downgrade_fstrings, parse  # noqa: E402
from gepa.compliance.review import scan_bundle  # noqa: E402
from gepa.compliance.wrapper import _unwrap_cached  # noqa: E402


def _fail(msg: str) -> None:
    print(f"review_time: {msg}", file=sys.stderr)
    sys.exit(2)


def _time(fn, repeat: int) -> float:
    """Median CPU seconds of `fn(run)` (the development machine is shared: wall time there mostly
    measures the other processes; the wall time of the last run is kept in `_WALL`). Each run
    gets its own number so callers can make the input unique: the review caches parses by text."""
    times = []
    for run_no in range(repeat):
        # A wrapped payload is the same text in every run: drop the review's parse caches too.
        downgrade_fstrings.cache_clear()
        _unwrap_cached.cache_clear()
        t0, w0 = time.process_time(), time.perf_counter()
        fn(run_no)
        times.append(time.process_time() - t0)
        _WALL[0] = time.perf_counter() - w0
    return statistics.median(times)


_WALL = [0.0]


def _entry_files(devset: Path, entry: dict) -> dict[str, bytes]:
    folder = Path(entry["dir"]) if entry.get("dir") else devset / entry["set"] / entry["id"]
    return {name: (folder / name).read_bytes() for name in entry["files"]}


def _fresh(files: dict[str, bytes], run_no: int) -> dict[str, bytes]:
    """The same files with a comment that differs per run, so no cached parse is reused."""
    return {n: d + b"\n# run %d\n" % run_no if n.endswith(".py") else d for n, d in files.items()}


def _parse(data: bytes) -> ast.Module:
    # The records ran on Python 3.12: PEP 701 f-strings parse through pysyntax, as the review does.
    return parse(data.decode("utf-8", "replace"))


def _parse_all(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        if name.endswith(".py"):
            _parse(data)


def record_sized(target_bytes: int, tail: bytes) -> bytes:
    """Real Python from this repository, then `tail`, about `target_bytes` long and parseable."""
    parts: list[bytes] = []
    total = len(tail)
    for path in sorted((ROOT / "gepa").rglob("*.py")) + sorted((ROOT / "api").rglob("*.py")):
        text = path.read_bytes().replace(b"from __future__ import annotations\n", b"")
        if total + len(text) > target_bytes:
            continue
        parts.append(text)
        total += len(text)
    return b"\n".join(parts + [tail])


def run(devset: Path, repeat: int, size_kb: int) -> dict:
    entries = load_manifest(devset)
    rows = []
    for e in entries:
        files = _entry_files(devset, e)
        settings = [e["settings"]] if e.get("settings") else None
        entry = e.get("entry", "train_gpt.py")
        review_s = _time(lambda r: scan_bundle(_fresh(files, r), entry=entry, settings=settings), repeat)
        wall_s = _WALL[0]
        parse_s = _time(lambda r: _parse_all(_fresh(files, r)), repeat)
        rows.append({"id": e["id"], "bytes": sum(len(d) for d in files.values()), "review_s": review_s,
                     "wall_s": wall_s, "parse_s": parse_s, "ratio": review_s / parse_s if parse_s else None})
    largest = max(rows, key=lambda r: r["bytes"]) if rows else None
    big = {}
    if largest is not None and size_kb > 0:
        tail = _entry_files(devset, next(e for e in entries if e["id"] == largest["id"]))
        script = record_sized(size_kb * 1000, tail.get("train_gpt.py", b""))
        review_s = _time(lambda r: scan_bundle(_fresh({"train_gpt.py": script}, r)), repeat)
        wall = _WALL[0]
        parse_s = _time(lambda r: _parse(_fresh({"train_gpt.py": script}, r)["train_gpt.py"]), repeat)
        big = {"bytes": len(script), "review_s": review_s, "wall_s": wall, "parse_s": parse_s,
               "ratio": review_s / parse_s}
    times = [r["review_s"] for r in rows]
    return {"entries": rows,
            "summary": {"scripts": len(rows), "median_s": statistics.median(times) if times else None,
                        "max_s": max(times) if times else None,
                        "largest": largest, "record_sized": big, "repeat": repeat}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("devset", help="development-set folder (manifest.json, or <track>/<record>/ scripts; outside the repo)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per script; the median is kept")
    ap.add_argument("--size-kb", type=int, default=0, help="also time a synthetic script of this size (KB); 0: off")
    ap.add_argument("--json", dest="json_out", help="also write the rows and summary to this JSON file")
    args = ap.parse_args(argv)
    devset = Path(args.devset)
    if not devset.is_dir():
        _fail(f"{devset} is not a directory; pass the development-set folder")
    if args.repeat < 1 or args.size_kb < 0:
        _fail("--repeat must be positive and --size-kb not negative")
    out = run(devset, args.repeat, args.size_kb)
    for r in out["entries"]:
        print(f"{r['id'][:44]:44} {r['bytes']:8d} B  review {r['review_s'] * 1000:7.1f} ms  "
              f"parse {r['parse_s'] * 1000:6.1f} ms  x{r['ratio']:.1f}")
    s = out["summary"]
    print(f"scripts: {s['scripts']}, median {s['median_s'] * 1000:.0f} ms, max {s['max_s'] * 1000:.0f} ms; "
          f"largest {s['largest']['id']} ({s['largest']['bytes']} B) {s['largest']['review_s'] * 1000:.0f} ms CPU "
          f"({s['largest']['wall_s'] * 1000:.0f} ms wall)")
    b = s["record_sized"]
    if b:
        print(f"record-sized script {b['bytes']} B: review {b['review_s'] * 1000:.0f} ms CPU "
              f"({b['wall_s'] * 1000:.0f} ms wall), "
              f"parse {b['parse_s'] * 1000:.0f} ms (x{b['ratio']:.1f})")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
