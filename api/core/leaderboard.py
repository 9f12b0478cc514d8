"""The public leaderboard: verified results ranked by measured BPB, plus historical claims.

Verified entries are submissions this service evaluated and published with a passing verdict,
whose stored result was computed on the full canonical validation set (coverage `full`): a demo
cut or another validation set is never ranked, whatever the verdict column says. Flagged or
disqualified ones drop out. By default the board shows one row per participant and method (the
submitter and the entry's name): their best run, with the count, mean and spread of all their
runs of it (`runs="all"` lists every run). The "claimed only" section lists record folders
ingested from the challenge repository: their numbers are what the authors reported, not
measured here, and every entry says so in `status`. Entries carry the columns of the challenge's
own README tables: name, author, seeds (count, mean ± std), hardware, date and a code link, and
`size_bytes` is measured (code + artifact here, the training log's total for history) whenever
a measurement exists; `size_source` says which.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.models import Coverage, Record, Result, State, Submission, Verdict

RUNS = ("best", "all")
HISTORICAL = "historical"  # the review label of ingested history whose only finding is the missing code
HISTORICAL_LABEL = "historical, not reviewed"
OFFICIAL_RECORDS = "https://github.com/openai/parameter-golf/tree/main/records"
CLAIMED_NOTE = ("Historical entries ingested from the challenge repository: val_bpb is the number the authors "
                "claimed; golfcheck did not measure it.")


def _competition_ranks(values: list[float]) -> list[int]:
    """1, 2, 2, 4: equal scores share a rank (values sorted ascending)."""
    ranks: list[int] = []
    for i, v in enumerate(values):
        ranks.append(ranks[-1] if i and v == values[i - 1] else i + 1)
    return ranks


def tracks(session: Session) -> list[str]:
    a = set(session.scalars(select(Submission.track).distinct()))
    b = set(session.scalars(select(Record.track).distinct()))
    return sorted(a | b)


def claimed_author(submission_json: str | None) -> str | None:
    """The free-text author submission.json claims: shown as "claimed author", never as the author
    (that is the authenticated submitter's display name)."""
    try:
        meta = json.loads(submission_json) if submission_json else None
    except ValueError:
        return None
    author = meta.get("author") if isinstance(meta, dict) else None
    return (author.strip()[:200] or None) if isinstance(author, str) else None


def known_tracks(session: Session, configured: list[str]) -> list[str]:
    """The tracks a board can be asked for: the configured ones and any that ingested records use."""
    return sorted(set(configured) | set(tracks(session)))


def seed_stats(values: list[float]) -> dict[str, Any]:
    """count, mean and sample standard deviation (None for fewer than two values)."""
    vals = [float(v) for v in values if v is not None]
    return {"count": len(vals), "mean": statistics.fmean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else None}


def _method(sub: Submission) -> str:
    return " ".join((sub.name or sub.folder or "").lower().split())


def verified_entries(session: Session, track: str, runs: str = "best") -> list[dict[str, Any]]:
    pairs = list(session.execute(
        select(Submission, Result).join(Result, Result.id == Submission.result_id).where(
            Submission.track == track,
            Submission.state == State.PUBLISHED.value,
            Submission.verdict == Verdict.PASS.value,
            Submission.flagged.is_(False),
            Submission.disqualified.is_(False),
            Submission.measured_val_bpb.is_not(None),
            Result.coverage == Coverage.FULL.value,
            Result.max_val_tokens.is_(None),
        ).order_by(Submission.measured_val_bpb, Submission.created_at, Submission.id)).all())
    rows = [s for s, _ in pairs]
    results = {s.id: r for s, r in pairs}
    groups: dict[tuple[int, str], list[Submission]] = {}
    for r in rows:  # best first, so each group's first row is its best run
        groups.setdefault((r.submitter_id, _method(r)), []).append(r)
    shown = rows if runs == "all" else [g[0] for g in groups.values()]
    ranks = _competition_ranks([float(r.measured_val_bpb or 0.0) for r in shown])
    out = []
    for rank, r in zip(ranks, shown):
        group = groups[(r.submitter_id, _method(r))]
        out.append({
            "rank": rank,
            "status": "verified",
            "track": r.track,
            "folder": r.folder,
            "name": r.name,
            "author": r.author,
            "claimed_author": claimed_author(r.submission_json),
            "family": r.family,
            "family_title": r.family_title,
            "val_bpb": r.measured_val_bpb,
            "claimed_val_bpb": r.claimed_val_bpb,
            "verdict": r.verdict,
            "submission_id": r.id,
            "bytes_total": r.counted_bytes,
            "size_bytes": r.counted_bytes,
            "size_source": "measured",
            "submitted_at": r.created_at.isoformat().replace("+00:00", "Z"),
            "date": r.created_at.date().isoformat(),
            "runs": len(group),
            "seeds": seed_stats([g.measured_val_bpb for g in group]),
            "hardware": results[r.id].device,
            "links": {"self": f"/api/v1/submissions/{r.id}", "page": f"/entries/{r.id}", "code": f"/entries/{r.id}/code"},
            **provenance(results[r.id]),
        })
    return out


def _rules(rec: Record) -> list[dict[str, Any]]:
    try:
        data = json.loads(rec.rule_results) if rec.rule_results else {}
    except ValueError:
        return []
    rules = data.get("results", data.get("rules", [])) if isinstance(data, dict) else []
    return [r for r in rules if isinstance(r, dict)]


def review_label(rec: Record) -> str | None:
    """`historical` when the record's only finding is that this copy lacks its README or code
    (so nothing was reviewed), else its verdict."""
    if rec.verdict != "warn":
        return rec.verdict
    findings = [r for r in _rules(rec) if r.get("status") not in ("pass", "skip")]
    if findings and all(r.get("rule") == "files.required" for r in findings):
        return HISTORICAL
    return rec.verdict


def logged_size(rec: Record) -> int | None:
    """The largest total submission size the record's own training logs print (the size.cap
    rule's evidence), a measurement rather than submission.json's claim."""
    for r in _rules(rec):
        if r.get("rule") == "size.cap":
            vals = [e.get("value") for e in r.get("evidence") or []
                    if isinstance(e, dict) and "logged total" in str(e.get("message", ""))
                    and isinstance(e.get("value"), int)]
            return max(vals) if vals else None
    return None


def _record_seeds(data: dict[str, Any], claimed: float | None) -> dict[str, Any]:
    per_seed = data.get("seed_results") or {}
    vals = [v.get("val_bpb") for v in per_seed.values() if isinstance(v, dict)
            and isinstance(v.get("val_bpb"), (int, float))]
    if len(vals) >= 2:
        return seed_stats(vals)
    seeds = data.get("seeds") or []
    std = data.get("val_bpb_std")
    return {"count": len(seeds) or (1 if claimed is not None else 0), "mean": claimed,
            "std": float(std) if isinstance(std, (int, float)) and len(seeds) > 1 else None}


def provenance(res: Result | None) -> dict[str, Any]:
    """What a measured number was computed on: tokens and bytes scored against the canonical totals,
    the validation shards' sha256, and the coverage label (full | demo | non-canonical)."""
    if res is None:
        return {}
    return {
        "coverage": res.coverage or (Coverage.DEMO.value if res.max_val_tokens is not None else Coverage.NON_CANONICAL.value),
        "demo": res.max_val_tokens is not None,
        "tokens_scored": res.tokens_scored,
        "total_targets": res.total_targets,
        "val_tokens": res.val_tokens,
        "bytes_scored": res.bytes_scored,
        "canonical_bytes": res.canonical_bytes,
        "val_sha256": res.val_sha256,
        "canonical_val_sha256": res.canonical_val_sha256,
        "max_val_tokens": res.max_val_tokens,
    }


def claimed_entries(session: Session, track: str) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(Record).where(Record.track == track)))
    # Ranked by the compliance ranking stored at ingest; unranked entries (no usable claim) last.
    rows.sort(key=lambda r: (r.rank is None, r.rank if r.rank is not None else 0,
                             r.claimed_val_bpb if r.claimed_val_bpb is not None else float("inf"), r.folder))
    out = []
    for r in rows:
        data = record_data(r)
        if data.get("folded_into"):
            continue  # a record_support folder: shown as the row of the record it backs
        logged = logged_size(r)
        out.append({
            "rank": r.rank,
            "status": "claimed",
            "track": r.track,
            "folder": r.folder,
            "name": r.name,
            "author": r.author,
            "val_bpb": r.claimed_val_bpb,
            "verdict": r.verdict,
            "review": review_label(r),
            "date": r.date,
            "bytes_total": r.bytes_total,
            "size_bytes": logged if logged is not None else r.bytes_total,
            "size_source": "logged" if logged is not None else ("claimed" if r.bytes_total is not None else None),
            "seeds": _record_seeds(data, r.claimed_val_bpb),
            "hardware": data.get("hardware") if isinstance(data.get("hardware"), str) else None,
            # No API resource: ingested history is only on the board and its public page.
            "links": {"self": None, "page": f"/records/{r.id}", "code": f"{OFFICIAL_RECORDS}/{r.track}/{r.folder}"},
            "score_source": data.get("score_source"),
            **({"support": data["support"]} if data.get("support") else {}),
        })
    return out


def progression(verified: list[dict[str, Any]], claimed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's progression: each entry (by date) that beat every earlier one."""
    points = sorted(((e["date"], e["val_bpb"], e["name"] or e["folder"] or e.get("submission_id"), e["status"])
                     for e in [*verified, *claimed]
                     if e.get("date") and isinstance(e.get("val_bpb"), (int, float))),
                    key=lambda p: (p[0], p[1]))
    best: float | None = None
    out = []
    for date, bpb, name, status in points:
        if best is None or bpb < best:
            best = bpb
            out.append({"date": str(date)[:10], "val_bpb": bpb, "name": name, "status": status})
    return out


DEMO_NOTE = ("This server runs with the demo setting (GOLFCHECK_MAX_VAL_TOKENS={n}): it scores only the first "
             "{n} validation targets, so nothing it measures is verified, ranked or published.")


def build_leaderboard(session: Session, *, track: str, limit: int = 50, offset: int = 0,
                      demo_max_val_tokens: int | None = None, runs: str = "best") -> dict[str, Any]:
    verified = verified_entries(session, track, runs)
    claimed = claimed_entries(session, track)
    return {
        "track": track,
        "demo": demo_max_val_tokens is not None,
        **({"demo_note": DEMO_NOTE.format(n=demo_max_val_tokens)} if demo_max_val_tokens is not None else {}),
        "tracks": tracks(session),
        "limit": limit,
        "offset": offset,
        "runs": runs,
        "progression": progression(verified_entries(session, track, "all") if runs == "best" else verified, claimed),
        "verified": {"total": len(verified), "entries": verified[offset:offset + limit]},
        "claimed_only": {"total": len(claimed), "note": CLAIMED_NOTE, "entries": claimed[offset:offset + limit]},
    }


def record_data(rec: Record) -> dict[str, Any]:
    return json.loads(rec.data) if rec.data else {}
