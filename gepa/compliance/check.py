"""Run the rule set on a records folder: the one entry point shared by CLI and worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gepa.compliance.engine import Verdict, run_rules
from gepa.compliance.record import Record, load_record
from gepa.compliance.review import folder_files, scan_bundle
from gepa.compliance.source import decode_source, is_python
from gepa.compliance.rules import RULES, RuleContext
from gepa.errors import InputError


def build_context(record: Record, artifact: str | Path | None = None, measured: dict[str, Any] | None = None,
                  current_best: dict[str, Any] | None = None, config: str | Path | None = None,
                  historical: bool = False) -> RuleContext:
    art = Path(artifact) if artifact is not None else None
    if art is not None and not art.is_file():
        raise InputError(f"artifact {art} does not exist; pass the path of the compressed model file")
    files = folder_files(record.folder) if record.code_path else {}
    sources = {n: decode_source(d).text for n, d in files.items() if is_python(n)}
    # Reachability is also evaluated under each logged configuration (the runs that made the score).
    settings = [lg.hyperparams for lg in record.result_logs() if lg.hyperparams]
    printed = {m.label for lg in record.result_logs() for m in lg.metrics}  # what the runs printed
    scan = scan_bundle(files, settings=settings, printed=printed) if files else None
    return RuleContext(record=record, code_sources=sources, scan=scan, artifact=art,
                       config_path=Path(config) if config is not None else None,
                       measured=measured, current_best=current_best, historical=historical)


def check_record(folder_or_record: str | Path | Record, artifact: str | Path | None = None, *,
                 measured: dict[str, Any] | None = None, current_best: dict[str, Any] | None = None,
                 config: str | Path | None = None, historical: bool = False) -> Verdict:
    """All rules v1 on one records folder. Never raises on malformed content (only on a bad path).

    `historical`: the folder is a copy of an already-published record that may lack its code and
    README (as the ingested challenge history does); their absence is then a warning."""
    record = folder_or_record if isinstance(folder_or_record, Record) else load_record(folder_or_record)
    ctx = build_context(record, artifact, measured, current_best, config, historical=historical)
    return run_rules(RULES, ctx, folder=record.folder)
