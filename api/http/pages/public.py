"""Public HTML pages (no login): the leaderboard per track, verified entry pages and the pages of
historical records (claimed numbers only).

Routes:
    GET /                       → /leaderboard
    GET /leaderboard?track=T    one track (T = all: every track on one page); `runs=all` lists every
                                verified run instead of each participant's best per method
    GET /entries/{id}/code      a published entry's train_gpt.py, as plain text
    GET /entries/{id}           a submission this service evaluated and published (also after a
                                flag or disqualification, which the page then shows with its reason)
    GET /records/{id}           an ingested record folder: claimed numbers and its rule results
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy import func, select

from api.http.charts import progression_chart
from api.core.crud import configured_tracks, normalise_track, verification
from api.http.deps import ROW_ID_MAX, SessionDep, SettingsDep
from api.core.leaderboard import (
    CLAIMED_NOTE,
    DEMO_NOTE,
    HISTORICAL_LABEL,
    claimed_author,
    claimed_entries,
    known_tracks,
    progression,
    provenance,
    verified_entries,
)
from api.core.models import Attempt, Flag, Record, Result, Submission, SubmissionFile, User
from api.http.pages import views
from api.http.pages.common import chart_markup, error_page, redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> Response:
    return redirect("/leaderboard")


def _track_label(track: str) -> str:
    return track.removeprefix("track_").replace("_", " ")


@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request, session: SessionDep, settings: SettingsDep,
                     track: str | None = Query(None, max_length=100),
                     runs: str | None = Query(None, max_length=10)) -> Response:
    runs = "all" if runs == "all" else "best"
    all_tracks = known_tracks(session, configured_tracks(settings))
    if track == "all":
        selected = all_tracks
    else:
        selected = [normalise_track(track, settings.default_track)]
        if selected[0] not in all_tracks:
            return error_page(request, 404, "No such track",
                              f"This leaderboard has no track {str(track)[:60]!r}.")
    record_ids = {(t, f): i for i, t, f in session.execute(select(Record.id, Record.track, Record.folder))}
    sections = []
    for t in selected:
        claimed = claimed_entries(session, t)
        for e in claimed:
            e["record_id"] = record_ids.get((t, e["folder"]))
            if e.get("support"):
                e["support_id"] = record_ids.get((t, e["support"]))
        every_run = verified_entries(session, t, "all")
        verified = every_run if runs == "all" else verified_entries(session, t, "best")
        steps = progression(every_run, claimed)
        chart = progression_chart([(p["date"], p["val_bpb"], p["name"]) for p in steps],
                                  title=f"Best BPB over time, {_track_label(t)}") if steps else None
        sections.append({"track": t, "label": _track_label(t), "verified": verified, "claimed": claimed,
                         "runs_total": len(every_run), "progression": steps, "chart": chart})
    return render(request, "leaderboard.html", {
        "title": "Leaderboard" + ("" if track == "all" else f": {_track_label(selected[0])}"),
        "tracks": [(t, _track_label(t)) for t in all_tracks], "current": "all" if track == "all" else selected[0],
        "sections": sections, "cap_bytes": settings.cap_bytes, "claimed_note": CLAIMED_NOTE,
        "runs": runs, "track_param": track or "", "historical_label": HISTORICAL_LABEL,
        "demo_note": DEMO_NOTE.format(n=settings.max_val_tokens) if settings.demo else None,
    }, headers={"Cache-Control": "public, max-age=15, must-revalidate"})


def _rank_on_board(session: Any, sub: Submission) -> int | None:
    for e in verified_entries(session, sub.track, "all"):
        if e["submission_id"] == sub.id:
            return int(e["rank"])
    return None


@router.get("/entries/{submission_id}", response_class=HTMLResponse)
def entry_page(request: Request, submission_id: str, session: SessionDep) -> Response:
    sub = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if sub is None or not views.ever_published(session, sub):
        return error_page(request, 404, "Entry not found",
                          "There is no published entry with this id. Entries appear here once a result is published.")
    attempt, chunks = views.chunk_rows(session, sub)
    # `attempt` counts every stage claim (checks 1, evaluation 2 on a first try): name it on the
    # public page only when the evaluation really ran more than once.
    evals = session.scalar(select(func.count()).select_from(Attempt).where(Attempt.submission_id == sub.id,
                                                                          Attempt.stage == "eval")) or 0
    result = session.get(Result, sub.result_id) if sub.result_id else None
    badge = views.public_status(sub)
    flags = views.open_flags(session, sub.id)
    raisers = dict(session.execute(select(User.id, User.name).where(
        User.id.in_([f.raised_by for f in flags if f.raised_by]))).all()) if flags else {}
    return render(request, "entry.html", {
        "title": sub.name or sub.folder or sub.id,
        "sub": sub, "badge": badge, "rank": _rank_on_board(session, sub),
        "claimed_author": claimed_author(sub.submission_json),
        "rules": views.current_rule_views(session, sub),
        "notes": views.reviewer_notes(session, sub.id),
        "flags": flags, "flag_raisers": raisers,
        "chunks": chunks, "attempt": attempt if evals > 1 else None,
        "charts": chart_markup(chunks, sub.claimed_val_bpb),
        "counted": sub.counted_bytes if sub.counted_bytes is not None else sub.artifact_bytes + sub.code_bytes,
        "track_label": _track_label(sub.track),
        "verification": verification(sub, result), "prov": provenance(result),
    })


@router.get("/entries/{submission_id}/code")
def entry_code(request: Request, submission_id: str, session: SessionDep) -> Response:
    """The training script of a published entry: what the leaderboard's code link opens."""
    sub = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if sub is None or not views.ever_published(session, sub):
        return error_page(request, 404, "Entry not found", "There is no published entry with this id.")
    f = session.scalar(select(SubmissionFile).where(SubmissionFile.submission_id == sub.id,
                                                    SubmissionFile.role == "code").limit(1))
    try:
        data = request.app.state.store.read_bytes(f.sha256) if f is not None else None
    except (OSError, ValueError):
        data = None
    if data is None:
        return error_page(request, 404, "Code not found", "This entry has no stored train_gpt.py.")
    # text/plain with nosniff: the browser shows it, never runs or renders it.
    return PlainTextResponse(data.decode("utf-8", errors="replace"),
                             headers={"X-Content-Type-Options": "nosniff",
                                      "Content-Disposition": 'inline; filename="train_gpt.py"'})


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, session: SessionDep, settings: SettingsDep,
                record_id: int = Path(ge=1, le=ROW_ID_MAX)) -> Response:
    rec = session.get(Record, record_id)
    if rec is None:
        return error_page(request, 404, "Record not found", "There is no ingested record with this id.")
    try:
        data = json.loads(rec.data) if rec.data else {}
    except ValueError:
        data = {}
    flags = list(session.scalars(select(Flag).where(Flag.record_id == rec.id, Flag.status == "open",
                                                    Flag.public.is_(True))))
    return render(request, "record.html", {
        "title": rec.name or rec.folder, "rec": rec, "data": data if isinstance(data, dict) else {},
        "rules": views.record_rule_views(rec.rule_results), "flags": flags,
        "cap_bytes": settings.cap_bytes, "track_label": _track_label(rec.track),
    })
