"""Time the reviewer's code diff (`api.core.code_diff.diff_text`) on adversarial input against a
realistic revision, in one run, so the ratio is comparable across machines.

Usage: .venv/bin/python bench/code_diff.py [--repeat N] [--json OUT]

Cases (all at the 5,000-line cap, CPU seconds, median of --repeat runs):
- `revision`: a record-sized script made of this repository's Python sources, against itself
  with a few lines changed, inserted and deleted (what a reviewer diffs every day);
- `periodic`: 5,000 lines cycling 7 distinct lines against 5,000 cycling 5 (no common anchor);
- `few_distinct`: 5,000 random lines out of 100 distinct ones on each side (every line is
  frequent, just under difflib's autojunk threshold).
Before the fix, an exact difflib match took 202 s on `periodic` at 5,000 lines. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.core.code_diff import MAX_DIFF_LINES, diff_text  # noqa: E402


def _revision() -> tuple[str, str]:
    lines: list[str] = []
    for p in sorted((ROOT / "api").rglob("*.py")):
        lines += p.read_text().splitlines()
        if len(lines) >= MAX_DIFF_LINES:
            break
    old = lines[:MAX_DIFF_LINES]
    new = list(old)
    rng = random.Random(0)
    for _ in range(20):
        i = rng.randrange(len(new))
        new[i] = new[i] + "  # changed"
    for _ in range(10):
        new.insert(rng.randrange(len(new)), "inserted = True")
        del new[rng.randrange(len(new))]
    return "\n".join(old) + "\n", "\n".join(new) + "\n"


def cases() -> dict[str, tuple[str, str]]:
    n = MAX_DIFF_LINES
    r1, r2 = random.Random(1), random.Random(2)
    return {
        "revision": _revision(),
        "periodic": ("".join(f"l{i % 7}\n" for i in range(n)), "".join(f"l{i % 5}\n" for i in range(n))),
        "few_distinct": ("".join(f"l{r1.randrange(100)}\n" for _ in range(n)),
                         "".join(f"l{r2.randrange(100)}\n" for _ in range(n))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out = {}
    for name, (old, new) in cases().items():
        times = []
        for _ in range(args.repeat):
            t = time.process_time()
            d = diff_text(old, new)
            times.append(time.process_time() - t)
        out[name] = {"cpu_s": statistics.median(times), "added": d.added, "removed": d.removed}
    base = out["revision"]["cpu_s"] or 1e-9
    for name, row in out.items():
        row["ratio_to_revision"] = row["cpu_s"] / base
        print(f"{name:13s} {row['cpu_s']:.4f} CPU-s  {row['ratio_to_revision']:.1f}x revision  "
              f"(+{row['added']} -{row['removed']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
