"""Run the rule set on a records folder: the one entry point shared by the CLI, the worker and ingest.

`check_record(folder)` finds what a records folder holds the same way for every caller: the
artifact (the one `final_model*` / `*.ptz` file), the evaluation config (`eval.json`, then
`eval_config.json`, `config.json`, `golfcheck.json`) and the entry script (`train_gpt.py`, or
the folder's only top-level `.py`). The service writes a submission's stored files back into a
folder with their submitted names and calls this same function, so `golfcheck check DIR` and
the server give the same rule list for the same files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from gepa.compliance import policy
from gepa.compliance.engine import STAGE_CHECKS, Verdict, run_rules
from gepa.compliance.record import Record, load_record
from gepa.compliance.review import folder_files, scan_bundle
from gepa.compliance.source import decode_source, is_python
from gepa.compliance.rules import RULES, RuleContext
from gepa.compliance.submission import canonical_track
from gepa.errors import InputError


def find_artifact(folder: Path) -> Path | None:
    """The folder's one compressed model artifact (None when there is none or several)."""
    cands = sorted(p for p in folder.rglob("*")
                   if p.is_file() and (p.name.endswith(policy.ARTIFACT_SUFFIXES) or p.name.startswith(policy.ARTIFACT_PREFIX)))
    return cands[0] if len(cands) == 1 else None


def find_config(folder: Path) -> Path | None:
    for name in policy.CONFIG_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def find_entries(folder: Path) -> list[str]:
    """The scripts that may be what the run executed, the reported entry first: `train_gpt.py`
    when shipped; otherwise every top-level `.py` (a study folder such as HNet ships
    `train_gpt_hnet.py` and `train_gpt_hnet_byte.py`, one per tokenizer), `train*` names first."""
    if (folder / "train_gpt.py").is_file():
        return ["train_gpt.py"]
    py = sorted((p.name for p in folder.glob("*.py") if p.is_file()), key=lambda n: (not n.startswith("train"), n))
    return py or ["train_gpt.py"]


def build_context(record: Record, artifact: str | Path | None = None, measured: dict[str, Any] | None = None,
                  current_best: dict[str, Any] | None = None, config: str | Path | None = None,
                  historical: bool = False, *, canonical_val_sha256: str | None = None, cap_bytes: int | None = None,
                  max_decompressed_bytes: int | None = None, discover: bool = True, review: bool = True) -> RuleContext:
    art = Path(artifact) if artifact is not None else (find_artifact(record.folder) if discover else None)
    if art is not None and not art.is_file():
        raise InputError(f"artifact {art} does not exist; pass the path of the compressed model file")
    cfg = Path(config) if config is not None else (find_config(record.folder) if discover else None)
    entries = find_entries(record.folder)
    entry = entries[0]
    # Every code file of the folder is reviewed (helper modules, native sources), each decoded as
    # CPython would read it; the Python texts are what the other rules see as the code.
    files = folder_files(record.folder) if review and (record.folder / entry).is_file() else {}
    sources = {n: decode_source(d).text for n, d in files.items() if is_python(n)}
    # Reachability is also evaluated under each logged configuration (the runs that made the score).
    settings = [lg.hyperparams for lg in record.result_logs() if lg.hyperparams]
    printed = {m.label for lg in record.result_logs() for m in lg.metrics}  # what the runs printed
    scan = scan_bundle(files, entry=entry, settings=settings, printed=printed, also_run=entries[1:]) if files else None
    return RuleContext(record=record, code_sources=sources, scan=scan, artifact=art, config_path=cfg,
                       measured=measured, current_best=current_best, historical=historical,
                       canonical_val_sha256=canonical_val_sha256, cap_bytes=cap_bytes,
                       max_decompressed_bytes=max_decompressed_bytes, entry=entry)


def check_record(folder_or_record: str | Path | Record, artifact: str | Path | None = None, *,
                 measured: dict[str, Any] | None = None, current_best: dict[str, Any] | None = None,
                 config: str | Path | None = None, historical: bool = False,
                 canonical_val_sha256: str | None = None, cap_bytes: int | None = None,
                 max_decompressed_bytes: int | None = None, stages: Iterable[str] | None = None,
                 track: str | None = None) -> Verdict:
    """All rules on one records folder. Never raises on malformed content (only on a bad path).

    `historical`: the folder is a copy of an already-published record that may lack its code and
    README (as the ingested challenge history does); their absence is then a warning.
    `stages`: run only the rules of these stages (`checks`, `score`); all by default.
    `track`: the leaderboard track the submission is judged for (the service passes the one it
    files the submission under); by default the record's own, else the record track.
    The artifact and config are found in the folder when not given."""
    record = folder_or_record if isinstance(folder_or_record, Record) else load_record(folder_or_record)
    chosen = canonical_track(track) if track else None
    if chosen or record.submission.track is None:
        sub = dataclasses.replace(record.submission, track=chosen or policy.TRACK_RECORD)
        record = dataclasses.replace(record, submission=sub)
    stages = list(stages) if stages is not None else None
    ctx = build_context(record, artifact, measured, current_best, config, historical=historical,
                        canonical_val_sha256=canonical_val_sha256, cap_bytes=cap_bytes,
                        max_decompressed_bytes=max_decompressed_bytes, discover=not historical,
                        review=stages is None or STAGE_CHECKS in stages)
    return run_rules(RULES, ctx, folder=record.folder, stages=stages)
