"""A records folder loaded into one object: normalised submission.json plus parsed logs.

`load_record(folder)` is pure (reads files, never imports or runs anything from the folder)
and never raises on malformed content: problems are carried in `submission.problems` for the
rules to report. It raises `InputError` only when the path is not a readable folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gepa.compliance.headline import headline
from gepa.compliance.logs import ParsedLog, parse_logs
from gepa.compliance.submission import Submission, load_submission
from gepa.errors import InputError

_MAX_FILES = 2000  # a records folder has a handful of files; refuse to walk a whole disk


@dataclass
class Record:
    folder: Path
    submission: Submission
    logs: list[ParsedLog]
    files: list[str] = field(default_factory=list)

    # Flat accessors the service stores as columns.
    @property
    def track(self) -> str | None:
        return self.submission.track

    @property
    def name(self) -> str:
        return self.submission.name or self.folder.name

    @property
    def author(self) -> str | None:
        return self.submission.author

    @property
    def val_bpb(self) -> float | None:
        return self.submission.val_bpb

    @property
    def val_loss(self) -> float | None:
        return self.submission.val_loss

    @property
    def seeds(self) -> list[str]:
        return self.submission.seeds

    @property
    def bytes_total(self) -> int | None:
        return self.submission.bytes_total

    @property
    def date(self) -> str | None:
        return self.submission.date

    @property
    def score(self) -> float | None:
        """The headline: the final score the record reports (gepa.compliance.headline)."""
        return headline(self)[0]

    @property
    def score_source(self) -> str:
        return headline(self)[1]

    def seed_logs(self) -> dict[str, ParsedLog | None]:
        """Map each reported seed to its log; prefer a log that reports that seed's number."""
        out: dict[str, ParsedLog | None] = {}
        for seed in self.seeds:
            cands = [lg for lg in self.logs if seed in (lg.seed, lg.file_seed)]
            claim = self.submission.seed_results.get(seed)
            pick = None
            if claim and claim.val_bpb is not None:
                pick = next((lg for lg in reversed(cands) if lg.find_bpb(claim.val_bpb)), None)
                if pick is None:
                    # A log whose seed line disagrees with its name can still carry the number.
                    taken = {id(v) for v in out.values() if v is not None}
                    pick = next((lg for lg in self.logs if id(lg) not in taken and lg.find_bpb(claim.val_bpb)), None)
            out[seed] = pick or (cands[-1] if cands else None)
        return out

    def headline_log(self) -> ParsedLog | None:
        """The log whose final metric line reports the headline val_bpb (the last such log)."""
        if self.val_bpb is None:
            return None
        hits = [lg for lg in self.logs if lg.find_bpb(self.val_bpb)]
        return hits[-1] if hits else None

    def result_logs(self) -> list[ParsedLog]:
        """Logs of the submitted runs: the seed logs if seeds are known, else every log with a final metric."""
        seeded = [lg for lg in self.seed_logs().values() if lg is not None]
        if seeded:
            return list({id(lg): lg for lg in seeded}.values())
        return [lg for lg in self.logs if lg.final_metrics]

    def to_dict(self) -> dict[str, Any]:
        s = self.submission
        return {
            "folder": self.folder.name,
            "track": self.track,
            "name": self.name,
            "author": s.author,
            "github_id": s.github_id,
            "date": s.date,
            "val_bpb": s.val_bpb,
            "val_loss": s.val_loss,
            "val_bpb_std": s.val_bpb_std,
            "score": self.score,
            "score_source": self.score_source,
            "supports_pr": s.raw.get("supports_pr") if isinstance(s.raw, dict) else None,
            "seeds": list(s.seeds),
            "seed_results": {k: vars(v) for k, v in s.seed_results.items()},
            "bytes_total": s.bytes_total,
            "bytes_code": s.bytes_code,
            "submission_type": s.submission_type,
            "hardware": s.hardware,
            "logs": [lg.file for lg in self.logs],
            "notes": list(s.notes),
            "problems": list(s.problems),
        }


def load_record(folder: str | Path) -> Record:
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"{path} is not a directory; pass a records folder (the one holding submission.json)")
    files = []
    for p in sorted(path.rglob("*")):
        if p.is_file():
            files.append(str(p.relative_to(path)))
            if len(files) > _MAX_FILES:
                raise InputError(f"{path} holds more than {_MAX_FILES} files; pass a single records folder")
    rec = Record(folder=path, submission=load_submission(path), logs=parse_logs(path), files=files)
    _repair_bpb_in_loss(rec)
    return rec


def _repair_bpb_in_loss(rec: Record) -> None:
    """Some files put the bpb into `val_loss` and omit `val_bpb`; accept it when the logs agree."""
    s = rec.submission
    if s.val_bpb is not None or s.val_loss is None:
        return
    finals = [lg.final_metrics[-1].val_bpb for lg in rec.logs if lg.final_metrics]
    candidates = finals + ([sum(finals) / len(finals)] if finals else [])
    if any(abs(v - s.val_loss) <= 1e-4 for v in candidates):
        s.val_bpb, s.val_loss = s.val_loss, None
        s.problems = [p for p in s.problems if not p.startswith("val_bpb is missing")]
        s.problems.append("val_loss holds the bits-per-byte number (the logs report it as val_bpb) and val_bpb is missing")
