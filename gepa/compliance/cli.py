"""`golfcheck check` and `golfcheck scan-code`: the reviewer's static checks, runnable before submitting.

Exit codes: 0 nothing failed, 1 a rule failed (check) or the code was flagged (scan-code),
2 bad input (raised as `InputError`, turned into exit 2 by the dispatcher in api/cli/main.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from gepa.errors import InputError
from gepa.compliance.check import check_record
from gepa.compliance.review import folder_files
from gepa.compliance.source import decode_source
from gepa.compliance.logs import parse_log
from gepa.compliance.review import scan_bundle

_MAX_CODE_BYTES = 20_000_000


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="run every static compliance rule on a records folder (no GPU)")
    p.add_argument("record_dir", help="the records folder (holding submission.json, logs, train_gpt.py)")
    p.add_argument("--artifact", help="compressed model file to size-check and validate (default: the folder's one "
                                      "final_model* / *.ptz file)")
    p.add_argument("--config", help="evaluation config JSON (default: eval.json, eval_config.json, config.json or "
                                    "golfcheck.json in the folder)")
    p.add_argument("--track", help="judge the folder for this track (default: submission.json's track, the folder "
                                   "path's, else the record track, as the server does)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(func=cmd_check)

    s = subparsers.add_parser("scan-code", help="static review of a train_gpt.py (never imports or runs it)")
    s.add_argument("file", help="the Python file to review (self-extracting wrappers are decoded statically)")
    s.add_argument("--json", action="store_true", help='print {"verdict", "findings": [{"rule", "line", "message"}]}')
    s.add_argument("--logs", nargs="+", metavar="LOG",
                   help="train logs of the run: their logged settings and printed metrics decide reachability, "
                        "as `check` does")
    s.set_defaults(func=cmd_scan_code)


def cmd_check(args: argparse.Namespace) -> int:
    folder = Path(args.record_dir)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a directory; pass a records folder")
    if args.config and not Path(args.config).is_file():
        raise InputError(f"config {args.config} does not exist")
    if args.artifact and not Path(args.artifact).is_file():
        raise InputError(f"artifact {args.artifact} does not exist")
    verdict = check_record(folder, args.artifact, config=args.config, track=args.track)
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, default=str))
    else:
        _print_verdict(verdict)
    return 1 if verdict.status == "fail" else 0


def _print_verdict(verdict) -> None:
    print(f"{verdict.folder}  [{verdict.ruleset}]  {verdict.status.upper()}")
    for r in verdict.results:
        print(f"  {r.status.upper():4}  {r.rule:24} {r.summary}")
        if r.status in ("fail", "warn"):
            for e in r.evidence[:5]:
                where = f"{e.file}:{e.line}" if e.file and e.line else (e.file or "")
                seen = "" if e.value is None else f" seen={e.value}"
                lim = "" if e.limit is None else f" limit={e.limit}"
                print(f"          - {where} {e.message}{seen}{lim}".rstrip())
    c = verdict.counts()
    print(f"  {c['pass']} pass, {c['warn']} warn, {c['fail']} fail, {c['skip']} skip")
    if verdict.verdict != "fail":
        print("  not verified: `check` measures nothing; only the service's evaluation on the full canonical "
              "validation set, reproducing the claim, makes a result verified")


def _bundle_for(path: Path) -> dict[str, bytes]:
    """The files reviewed with `path`: its whole folder when that is a records folder (or the file
    is the folder's train_gpt.py), else the file plus the sibling modules it imports or execs."""
    folder = path.parent
    if path.name == "train_gpt.py" or (folder / "submission.json").is_file():
        files = folder_files(folder)
        files[path.name] = path.read_bytes()
        return files
    files = {path.name: path.read_bytes()}
    todo = [path.name]
    while todo:
        text = decode_source(files[todo.pop()]).text
        for word in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)):
            for cand in (f"{word}.py", f"{word}/__init__.py"):
                if cand not in files and (folder / cand).is_file():
                    files[cand] = (folder / cand).read_bytes()
                    todo.append(cand)
        for lit in set(re.findall(r"[\w./-]+\.py", text)):  # exec(open("x.py").read())
            name = lit.lstrip("./")
            if name not in files and "/" not in name and (folder / name).is_file():
                files[name] = (folder / name).read_bytes()
                todo.append(name)
    return files


def _log_settings(paths: list[str]) -> tuple[list[dict[str, str]], set[str]]:
    settings, printed = [], set()
    for p in paths:
        lp = Path(p)
        if not lp.is_file():
            raise InputError(f"log {lp} does not exist; pass the train log(s) of the run")
        lg = parse_log(lp.read_text(encoding="utf-8", errors="replace"), lp.name)
        if lg.hyperparams:
            settings.append(lg.hyperparams)
        printed |= {m.label for m in lg.metrics}
    return settings, printed


def cmd_scan_code(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path} is not a file; pass the train_gpt.py to review")
    if path.stat().st_size > _MAX_CODE_BYTES:
        raise InputError(f"{path} is {path.stat().st_size} bytes; a training script is far smaller")
    settings, printed = _log_settings(args.logs) if args.logs else ([], set())
    report = scan_bundle(_bundle_for(path), entry=path.name, settings=settings or None, printed=printed or None)
    if path.name in report.parse_errors:
        raise InputError(f"{path} is not valid Python: {report.parse_errors[path.name]}")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for name, codecs in report.layers.items():
            print(f"{name}: decoded a {'+'.join(codecs)} wrapper; reviewing the code inside")
        for f in report.findings:
            print(f"{f.file}:{f.line}: {f.rule}: {f.message}")
            if f.chain:
                print("    taint: " + " -> ".join(f.chain))
        print(f"reviewed {', '.join(report.files)}; code bytes {report.code_bytes}")
        print(report.verdict)
    return 1 if report.flagged or report.needs_review else 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="golfcheck")
    register(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args()
    sys.exit(ns.func(ns))
