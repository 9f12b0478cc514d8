"""Measure the static code review on a development set of real challenge scripts.

Usage: .venv/bin/python bench/review_devset.py DEVSET [--json OUT] [--set NAME] [--id ID ...] [--quiet]
                                                [--sources bench/devset_sources.json]

DEVSET is a folder kept outside the repository (the scripts are third-party code and are never
committed): `DEVSET/manifest.json` lists entries, `DEVSET/<set>/<id>/` holds each entry's files.
An entry's `set` is "merged" (a merged record, legal by definition), "legal_pr" (a PR ruled legal)
or "illegal_pr" (a PR the maintainers ruled illegal); `ruling` is "legal" or "illegal".

Each entry is reviewed the way `golfcheck check` does it:
- a merged record (`record_folder` names its copy under tests/data/records) is assembled in a
  temporary folder from that copy's submission.json and logs plus the entry's scripts, and goes
  through `check_record`, so the review runs under the defaults and every logged configuration;
- any other entry goes through `scan_bundle` (every file of the entry, decoded as CPython would) under
  the defaults plus the entry's own `settings`
  (the env flags its PR ran with), when it has any.

`--sources` checks every reviewed file against the provenance list committed in the repository
(`bench/devset_sources.json`: where each copy was read from, its character count and sha256, and
the ruling it stands for; no code). A rebuilt development set is thereby shown to hold the same
bytes as the one the figures in docs/compliance-validation.md were measured on: each entry gets
`copy_check` "match", "mismatch" (a file differs) or "unrecorded" (a file not in the list).

Per entry the outcome is: flagged (an error-level code rule failed), warned (only warning rules
fired), unreviewed (the entry script was not parsed, or an exec'd payload stayed opaque) or clean.
The summary gives per-set counts, recall on illegal entries (overall and per mechanism), false
flags on legal entries and review time per entry (max and median). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gepa.compliance import RULE_IDS, check_record  # noqa: E402
from gepa.compliance.review import REVIEW_RULES, scan_bundle  # noqa: E402

RECORDS = ROOT / "tests" / "data" / "records"
SETS = ("merged", "legal_pr", "illegal_pr")
CODE_RULE_IDS = tuple(r for r in RULE_IDS if r.startswith("code."))
OPAQUE = "code.opaque"
# The rule a correct review reports for each mechanism; a catch under another rule still counts
# as caught, and is reported separately so a mislabelled finding is visible.
EXPECTED_RULE = {
    "ngram_target_key": "code.target-in-key",
    "target_gated_expert": "code.target-in-key",
    "prequant_ttt": "code.ttt-pre-eval",
    "pre_eval_ttt": "code.ttt-pre-eval",
    "multi_epoch_score": "code.rescore",
    "two_pass_rescore": "code.rescore",
    "best_of_selection": "code.rescore",
    "slot": "code.slot",
    "val_train": "code.val-in-training",
    "gptq_on_val": "code.val-in-training",
    "awq_on_val": "code.val-in-training",
    "paid_prefix": "code.paid-prefix",
    "two_pass_cache": "code.val-cache",
    "unnormalised_mixture": "code.unnormalised",
    "network": "code.network",
}


def _fail(msg: str) -> None:
    print(f"review_devset: {msg}", file=sys.stderr)
    sys.exit(2)


def discover_merged(devset: Path) -> list[dict]:
    """Entries for a folder laid out like the challenge's `records/`: `<track>/<record folder>/` holding
    that record's shipped code files (`DEVSET/merged/...` or the merged folder itself). Each folder that
    has a copy of its submission.json and logs under tests/data/records is a merged entry."""
    root = devset / "merged" if (devset / "merged").is_dir() else devset
    entries = []
    for track in sorted(p for p in root.iterdir() if p.is_dir() and (RECORDS / p.name).is_dir()):
        for rec in sorted(p for p in track.iterdir() if p.is_dir()):
            # FETCHED records where a copy came from; a folder without a script is still being fetched.
            files = sorted(str(f.relative_to(rec)) for f in rec.rglob("*") if f.is_file() and f.name != "FETCHED")
            scripts = [f for f in files if f.endswith(".py")]
            if scripts:
                # The entry is train_gpt.py, else the folder's only script (as check_record picks it).
                entry = "train_gpt.py" if "train_gpt.py" in scripts else scripts[0]
                entries.append({"id": rec.name, "set": "merged", "ruling": "legal", "files": files, "entry": entry,
                                "record_folder": f"{track.name}/{rec.name}", "dir": str(rec)})
    return entries


def load_manifest(devset: Path) -> list[dict]:
    path = devset / "manifest.json"
    if not path.is_file():
        found = discover_merged(devset)
        if found:
            return found
        _fail(f"{path} not found and no <track>/<record folder>/ layout under {devset}; pass the "
              f"development-set folder that holds manifest.json, or the folder of merged record scripts")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"{path} is not valid JSON ({exc}); fix or regenerate the manifest")
    if not isinstance(entries, list):
        _fail(f"{path} must hold a JSON list of entries")
    for e in entries:
        missing = [k for k in ("id", "set", "files", "ruling") if k not in e]
        if missing or e.get("set") not in SETS or e.get("ruling") not in ("legal", "illegal"):
            _fail(f"manifest entry {e.get('id', '?')!r} lacks {missing or 'a valid set/ruling'}; "
                  f"each entry needs id, set ({'/'.join(SETS)}), files and ruling (legal/illegal)")
    return entries


def load_sources(path: Path) -> dict[tuple[str, str, str], str]:
    """(set, entry id, file name) -> sha256, from the committed provenance list."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"{path} is not a readable JSON list ({exc}); pass bench/devset_sources.json")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        _fail(f"{path} must hold a JSON list of objects")
    bad = [r for r in rows if not all(isinstance(r.get(k), str) for k in ("set", "id", "file", "sha256"))]
    if bad:
        _fail(f"{path}: {len(bad)} row(s) lack set/id/file/sha256, e.g. {bad[0]}; each row names one file")
    return {(r["set"], r["id"], r["file"]): r["sha256"].lower() for r in rows}


def copy_check(entry: dict, folder: Path, sources: dict[tuple[str, str, str], str]) -> str:
    """match when every file of the entry has the recorded sha256; mismatch when one differs."""
    verdict = "match"
    for name in entry["files"]:
        want = sources.get((entry["set"], entry["id"], name))
        if want is None:
            verdict = "unrecorded" if verdict == "match" else verdict
            continue
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != want:
            return "mismatch"
    return verdict


def _outcome(statuses: dict[str, str], reviewed: bool, opaque: bool) -> dict:
    """statuses: code rule id -> pass/warn/fail/skip. A failing review-severity rule (native code,
    an opaque payload) is `needs_review`, not `flagged`: the review could not see, it did not judge."""
    failed = sorted(r for r, s in statuses.items() if s == "fail" and r not in REVIEW_RULES)
    review = sorted(r for r, s in statuses.items() if s in ("fail", "warn") and r in REVIEW_RULES)
    warned = sorted(r for r, s in statuses.items() if s == "warn" and r not in REVIEW_RULES)
    return {"flagged": bool(failed), "warned": bool(warned) and not failed, "rules": failed,
            "warnings": warned + review, "needs_review": bool(review), "unreviewed": (not reviewed) or opaque}


def review_merged(entry: dict, folder: Path) -> dict:
    """check_record on a temporary copy: the record's submission.json and logs plus the scripts."""
    rec = RECORDS / entry["record_folder"]
    if not rec.is_dir():
        raise FileNotFoundError(f"{rec} (record_folder of {entry['id']})")
    with tempfile.TemporaryDirectory(prefix="devset-") as tmp:
        work = Path(tmp) / rec.name
        shutil.copytree(rec, work)
        for name in entry["files"]:
            dest = work / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / name, dest)
        t0 = time.perf_counter()
        verdict = check_record(work, historical=True)
        dt = time.perf_counter() - t0
    statuses = {r.rule: r.status for r in verdict.results if r.rule in CODE_RULE_IDS}
    reviewed = any(s != "skip" for s in statuses.values())
    out = _outcome(statuses, reviewed, statuses.get(OPAQUE) in ("warn", "fail"))
    out["findings"] = [{"rule": r.rule, "file": e.file, "line": e.line}
                       for r in verdict.results if r.rule in CODE_RULE_IDS and r.status in ("fail", "warn")
                       for e in r.evidence]
    out["seconds"] = dt
    return out


def review_sources(entry: dict, folder: Path) -> dict:
    """scan_bundle on the entry's files under the defaults and the entry's own settings."""
    entry_name = entry.get("entry", "train_gpt.py")
    files = {name: (folder / name).read_bytes() for name in entry["files"]}
    settings = [entry["settings"]] if entry.get("settings") else None
    t0 = time.perf_counter()
    report = scan_bundle(files, entry=entry_name, settings=settings)
    dt = time.perf_counter() - t0
    statuses = {rid: "pass" for rid in CODE_RULE_IDS}
    for f in report.findings:
        sev = f.severity
        statuses[f.rule] = "fail" if sev in ("error", "review") else ("warn" if statuses.get(f.rule) != "fail" else "fail")
    reviewed = entry_name in report.files
    out = _outcome(statuses, reviewed, bool(report.parse_errors) or any(
        f.rule == OPAQUE and f.file == report.entry for f in report.findings))
    out["findings"] = [{"rule": f.rule, "file": f.file, "line": f.line} for f in report.findings]
    out["seconds"] = dt
    return out


def review_entry(entry: dict, devset: Path, sources: dict | None = None) -> dict:
    folder = Path(entry["dir"]) if entry.get("dir") else devset / entry["set"] / entry["id"]
    base = {"id": entry["id"], "set": entry["set"], "ruling": entry["ruling"],
            "mechanism": entry.get("mechanism"), "copy": entry.get("copy"), "files": entry["files"]}
    if sources is not None:
        try:
            base["copy_check"] = copy_check(entry, folder, sources)
        except OSError as exc:
            base["copy_check"] = f"unreadable: {exc}"
    try:
        if entry["set"] == "merged" and entry.get("record_folder"):
            res = review_merged(entry, folder)
        else:
            res = review_sources(entry, folder)
    except (OSError, UnicodeError) as exc:
        res = {"flagged": False, "warned": False, "needs_review": False, "unreviewed": True, "rules": [], "warnings": [],
               "findings": [], "seconds": 0.0, "error": f"{type(exc).__name__}: {exc}"}
    return {**base, **res}


def summarize(results: list[dict]) -> dict:
    """Counts per set, recall on illegal entries, false flags on legal ones, review time."""
    per_set = {}
    for s in SETS:
        rows = [r for r in results if r["set"] == s]
        per_set[s] = {
            "entries": len(rows),
            "reviewed": sum(not r["unreviewed"] for r in rows),
            "flagged": sum(r["flagged"] for r in rows),
            "warned": sum(r["warned"] for r in rows),
            "needs_review": sum(bool(r.get("needs_review")) for r in rows),
            "unreviewed": sum(r["unreviewed"] for r in rows),
        }
    illegal = [r for r in results if r["ruling"] == "illegal"]
    legal = [r for r in results if r["ruling"] == "legal"]
    by_mech: dict[str, dict] = {}
    for r in illegal:
        m = by_mech.setdefault(r.get("mechanism") or "unknown", {"total": 0, "caught": 0, "expected_rule": 0})
        m["total"] += 1
        m["caught"] += bool(r["flagged"])
        m["expected_rule"] += EXPECTED_RULE.get(r.get("mechanism")) in r["rules"]
    caught = sum(bool(r["flagged"]) for r in illegal)
    times = [r["seconds"] for r in results if r.get("seconds")]
    checks = [r["copy_check"] for r in results if "copy_check" in r]
    copies = ({k: sum(c == k for c in checks) for k in ("match", "mismatch", "unrecorded")}
              | {"ids_not_matching": sorted(r["id"] for r in results if r.get("copy_check", "match") != "match")}
              if checks else None)
    return {
        "copies": copies,
        "sets": per_set,
        "recall": {"caught": caught, "total": len(illegal),
                   "rate": (caught / len(illegal)) if illegal else None,
                   "missed": sorted(r["id"] for r in illegal if not r["flagged"]),
                   "by_mechanism": dict(sorted(by_mech.items()))},
        "false_flags": {"flagged": sum(bool(r["flagged"]) for r in legal), "total": len(legal),
                        "ids": sorted(r["id"] for r in legal if r["flagged"]),
                        "unreviewed_ids": sorted(r["id"] for r in legal if r["unreviewed"])},
        "seconds": {"max": max(times) if times else None,
                    "median": statistics.median(times) if times else None,
                    "total": sum(times)},
    }


def _table(results: list[dict], summary: dict) -> str:
    lines = [f"{'set':10} {'id':46} {'ruling':7} {'mechanism':20} {'outcome':10} {'ms':>7}  rules"]
    for r in results:
        outcome = "unreviewed" if r["unreviewed"] and not r["flagged"] else (
            "flagged" if r["flagged"] else ("review" if r.get("needs_review") else ("warned" if r["warned"] else "clean")))
        lines.append(f"{r['set']:10} {r['id'][:46]:46} {r['ruling']:7} {(r.get('mechanism') or '-')[:20]:20} "
                     f"{outcome:10} {r['seconds'] * 1000:7.0f}  {','.join(r['rules'] + r['warnings']) or '-'}")
        lines.append(f"{'':10} files: {', '.join(r.get('files') or [])}")
        for f in r.get("findings") or []:
            lines.append(f"{'':12} {f['rule']} at {f['file']}:{f['line']}")
    lines.append("")
    lines.append(f"{'set':10} {'entries':>7} {'reviewed':>8} {'flagged':>7} {'warned':>6} {'review':>6} {'unreviewed':>10}")
    for s, c in summary["sets"].items():
        lines.append(f"{s:10} {c['entries']:7} {c['reviewed']:8} {c['flagged']:7} {c['warned']:6} {c['needs_review']:6} "
                     f"{c['unreviewed']:10}")
    rc = summary["recall"]
    rate = f"{rc['rate']:.0%}" if rc["rate"] is not None else "n/a"
    lines.append(f"recall on illegal: {rc['caught']}/{rc['total']} ({rate})")
    for m, c in rc["by_mechanism"].items():
        lines.append(f"  {m:24} {c['caught']}/{c['total']} caught, {c['expected_rule']} under the expected rule")
    ff = summary["false_flags"]
    lines.append(f"false flags on legal: {ff['flagged']}/{ff['total']} {ff['ids'] or ''}".rstrip())
    cp = summary.get("copies")
    if cp:
        lines.append(f"copies against the provenance list: {cp['match']} match, {cp['mismatch']} differ, "
                     f"{cp['unrecorded']} not listed {cp['ids_not_matching'] or ''}".rstrip())
    sec = summary["seconds"]
    if sec["max"] is not None:
        lines.append(f"review time per entry: median {sec['median'] * 1000:.0f} ms, max {sec['max'] * 1000:.0f} ms, "
                     f"total {sec['total']:.1f} s")
    return "\n".join(lines)


def run(devset: Path, only_set: str | None = None, ids: list[str] | None = None,
        sources: dict | None = None) -> tuple[list[dict], dict]:
    entries = load_manifest(devset)
    if only_set:
        entries = [e for e in entries if e["set"] == only_set]
    if ids:
        entries = [e for e in entries if e["id"] in ids]
    results = [review_entry(e, devset, sources) for e in entries]
    return results, summarize(results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("devset", help="development-set folder holding manifest.json (kept outside the repo)")
    ap.add_argument("--json", dest="json_out", help="also write results and summary to this JSON file")
    ap.add_argument("--set", choices=SETS, help="only entries of this set")
    ap.add_argument("--id", action="append", help="only this entry id (repeatable)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary JSON")
    ap.add_argument("--sources", help="provenance list (bench/devset_sources.json): check each file's sha256")
    args = ap.parse_args(argv)
    devset = Path(args.devset)
    if not devset.is_dir():
        _fail(f"{devset} is not a directory; pass the development-set folder")
    sources = load_sources(Path(args.sources)) if args.sources else None
    results, summary = run(devset, args.set, args.id, sources)
    if not args.quiet:
        print(_table(results, summary))
        print()
    print(json.dumps(summary, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"results": results, "summary": summary}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
