"""Reviewer dashboard (login with a reviewer or admin token; session cookie; CSRF on every form).

Routes (all under /review, none in the OpenAPI schema):
    GET  /review/login, POST /review/login, POST /review/logout
    GET  /review                               queue: filters, sortable columns, counts by state, bulk form
    GET  /review/submissions/{id}              everything about one submission, with the action forms
    GET  /review/submissions/{id}/live         the progress + charts fragment the page polls while it runs
    GET  /review/submissions/{id}/files/{fid}  line-numbered view of a submitted text file (#L123)
    GET  /review/submissions/{id}/code         → the file view of its train_gpt.py
    POST /review/submissions/{id}/{action}     publish | flag | restore | disqualify | override | rerun | note
    GET  /review/audit                         the audit log as a table: filters, pages, details collapsed

Claims, bulk actions, code diffs and the export are in `api.pages.review_tools`.

Reading works without JavaScript; the only script (`static/live.js`) refreshes the progress
fragment while a submission evaluates.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from api.core import audit_view, review_claims, review_queue, reviewer
from api.core.crud import _progress, verification
from api.http.deps import ROW_ID_MAX, SessionDep, SettingsDep
from api.core.leaderboard import claimed_author, provenance
from api.core.models import Attempt, AuditLog, Result, State, StateTransition, Submission, SubmissionFile, User, Verdict
from api.http.pages import code as codeview
from api.http.pages import views
from api.http.pages.common import (
    login_principal,
    LOGIN_CSRF_COOKIE,
    Viewer,
    chart_markup,
    csrf_ok,
    error_page,
    load_viewer,
    redirect,
    render,
    safe_next,
    same_origin,
    set_cookie,
    sign_in,
    sign_out,
)
from gepa.compliance.policy import REPRO_FLOOR_BPB, REPRO_SIGMA_MULT
import secrets

TOLERANCE_TEXT = f"max({REPRO_FLOOR_BPB}, {REPRO_SIGMA_MULT:g}σ of the reported seeds)"

router = APIRouter(prefix="/review", include_in_schema=False)

RUNNING = (State.QUEUED.value, State.CHECKING.value, State.EVALUATING.value, State.RECEIVED.value)
ACTIONS = {
    "publish": reviewer.publish, "flag": reviewer.flag, "restore": reviewer.restore,
    "disqualify": reviewer.disqualify, "rerun": reviewer.request_rerun, "note": reviewer.note,
}
DONE_TEXT = {
    "publish": "Published: the result is on the leaderboard.",
    "flag": "Flagged: the entry left the leaderboard; the reason is shown on its public page.",
    "restore": "Restored.", "disqualify": "Disqualified: the entry left the leaderboard.",
    "override": "Rule result overridden; the verdict was re-derived.", "rerun": "Queued for a re-run.",
    "note": "Note added.",
    "claim": "Claimed: the queue shows you as its reviewer.", "assign": "Assigned.", "release": "Claim released.",
}


def _viewer(request: Request, session: Any) -> Viewer | None:
    v = load_viewer(request, session)
    request.state.viewer = v
    return v


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/review/login?" + urlencode({"next": target}))


# -- login / logout ------------------------------------------------------------------------------


def _login_form(request: Request, *, next_url: str, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    resp = render(request, "review/login.html", {"title": "Reviewer login", "next": next_url, "error": error,
                                                  "csrf": token}, status=status,
                  headers={"Cache-Control": "no-store"})
    # Double-submit token for the login form itself (there is no session yet to hold one).
    set_cookie(resp, request, LOGIN_CSRF_COOKIE, token, max_age=3600, path="/review/login")
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = Query(None, max_length=500)) -> Response:
    if _viewer(request, session) is not None:
        return redirect(safe_next(next))
    return _login_form(request, next_url=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, token: str = Form("", max_length=300),
          csrf_token: str = Form("", max_length=100), next: str = Form("/review", max_length=500)) -> Response:
    next_url = safe_next(next)
    principal = login_principal(request, session, token, csrf_token)
    if isinstance(principal, tuple):
        return _login_form(request, next_url=next_url, status=principal[0], error=principal[1])
    if not principal.can_review:
        session.rollback()
        session.add(AuditLog(actor=principal.actor, user_id=principal.user_id, action="web.login_refused",
                             details=json.dumps({"role": principal.role.value})))
        session.commit()
        return _login_form(request, next_url=next_url, status=403,
                           error="This token belongs to a submitter. The reviewer pages need a reviewer or admin token.")
    return sign_in(request, session, principal, next_url=next_url, login_path="/review/login")


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf_token: str = Form("", max_length=100)) -> Response:
    return sign_out(request, session, _viewer(request, session), csrf_token, login_path="/review/login")


# -- queue ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, done: str = Query("", max_length=20)) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    try:
        q = review_queue.QueueQuery.parse(request.query_params)
    except ValueError as exc:
        return error_page(request, 400, "Bad request", f"{exc}.")
    total = review_queue.count(session, q)
    rows = review_queue.page_rows(session, q)
    by_state = dict(session.execute(select(Submission.state, func.count()).group_by(Submission.state)).all())
    awaiting_scored = by_state.get(State.SCORED.value, 0)
    awaiting_flagged = session.scalar(select(func.count()).select_from(Submission).where(
        Submission.flagged.is_(True), Submission.disqualified.is_(False))) or 0
    return render(request, "review/queue.html", {
        "title": "Review queue", "rows": rows, "total": total, "page": q.page, "page_size": review_queue.PAGE_SIZE,
        "by_state": by_state, "states": [s.value for s in State], "verdicts": [x.value for x in Verdict],
        "tracks": sorted(set(session.scalars(select(Submission.track).distinct()))),
        "families": sorted(f for f in session.scalars(select(Submission.family).distinct()) if f),
        "reviewers": [u.name for u in review_claims.reviewers(session)], "unclaimed": review_queue.UNCLAIMED,
        "q": q, "f": q, "sorts": review_queue.SORTS, "urlencode": urlencode,
        "query": urlencode(q.params(page=1)), "export_query": urlencode(q.params(page=1)),
        "awaiting_scored": awaiting_scored, "awaiting_flagged": awaiting_flagged, "done": DONE_TEXT.get(done),
    }, headers={"Cache-Control": "no-store"})


# -- one submission -----------------------------------------------------------------------------


def _load(session: Any, submission_id: str) -> Submission | None:
    return session.get(Submission, submission_id) if len(submission_id) <= 36 else None


def _file_links(sub: Submission, files: list[SubmissionFile]) -> dict[str, int]:
    """Evidence names a file by its name (train_gpt.py, train.log): map names to stored files."""
    out: dict[str, int] = {}
    for f in files:
        base = f.filename.rsplit("/", 1)[-1]
        out.setdefault(base, f.id)
        out.setdefault(f.filename, f.id)
        if f.role == "code":
            out.setdefault("train_gpt.py", f.id)
    return out


def _link_evidence(rules: list[views.RuleView], sub: Submission, links: dict[str, int]) -> None:
    for r in rules:
        for e in r.evidence:
            if e.file and e.file in links:
                e.link = f"/review/submissions/{sub.id}/files/{links[e.file]}" + (f"#L{e.line}" if e.line else "")


def _live_context(session: Any, sub: Submission) -> dict[str, Any]:
    attempt, chunks = views.chunk_rows(session, sub)
    return {"sub": sub, "progress": _progress(sub), "chunks": chunks, "attempt": attempt,
            "charts": chart_markup(chunks, sub.claimed_val_bpb, sub.chunks_total if sub.state in RUNNING else None),
            "running": sub.state in RUNNING}


def _submission_context(session: Any, settings: Any, sub: Submission) -> dict[str, Any]:
    files = views.files_of(session, sub)
    rules = views.current_rule_views(session, sub)
    _link_evidence(rules, sub, _file_links(sub, files))
    submitter = session.get(User, sub.submitter_id)
    result = session.get(Result, sub.result_id) if sub.result_id else None
    attempts = list(session.scalars(select(Attempt).where(Attempt.submission_id == sub.id).order_by(Attempt.number)))
    history = list(session.scalars(select(StateTransition).where(StateTransition.submission_id == sub.id)
                                   .order_by(StateTransition.at, StateTransition.id)))
    audit = list(session.scalars(select(AuditLog).where(AuditLog.submission_id == sub.id)
                                 .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(50)))
    counted = sub.counted_bytes if sub.counted_bytes is not None else sub.artifact_bytes + sub.code_bytes
    try:
        config = json.loads(sub.config_json or "{}")
    except ValueError:
        config = sub.config_json
    delta = None
    if sub.measured_val_bpb is not None and sub.claimed_val_bpb is not None:
        delta = sub.measured_val_bpb - sub.claimed_val_bpb
    return {
        "title": f"Review: {sub.name or sub.id}", "sub": sub, "submitter": submitter.name if submitter else None,
        "claimed_author": claimed_author(sub.submission_json),
        "files": files, "text_roles": {"code", "config", "submission_json", "log"}, "rules": rules,
        "result": result, "attempts": attempts, "history": history, "audit": audit,
        "counted": counted, "headroom": sub.cap_bytes - counted, "config": config, "delta": delta,
        "tolerance": TOLERANCE_TEXT, "notes": views.reviewer_notes(session, sub.id),
        "verification": verification(sub, result), "prov": provenance(result),
        "flags": views.open_flags(session, sub.id, public_only=False),
        "public": views.ever_published(session, sub), "badge": views.public_status(sub),
        "rule_statuses": reviewer.RULE_STATUSES, **_live_context(session, sub),
    }


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(request: Request, submission_id: str, session: SessionDep, settings: SettingsDep,
                    done: str = Query("", max_length=20)) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    sub = _load(session, submission_id)
    if sub is None:
        return error_page(request, 404, "Not found", f"No submission {submission_id}.")
    ctx = _submission_context(session, settings, sub)
    ctx["done"] = DONE_TEXT.get(done)
    ctx["holder"] = review_claims.holder(session, sub.id)
    ctx["reviewers"] = [u.name for u in review_claims.reviewers(session)]
    return render(request, "review/submission.html", ctx, headers={"Cache-Control": "no-store"})


@router.get("/submissions/{submission_id}/live", response_class=HTMLResponse)
def live_fragment(request: Request, submission_id: str, session: SessionDep) -> Response:
    v = _viewer(request, session)
    if v is None:
        return error_page(request, 401, "Signed out", "Your session ended; sign in again.")
    sub = _load(session, submission_id)
    if sub is None:
        return error_page(request, 404, "Not found", f"No submission {submission_id}.")
    return render(request, "review/_live.html", _live_context(session, sub), headers={"Cache-Control": "no-store"})


@router.get("/submissions/{submission_id}/code")
def code_redirect(request: Request, submission_id: str, session: SessionDep) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    fid = session.scalar(select(SubmissionFile.id).where(SubmissionFile.submission_id == submission_id,
                                                         SubmissionFile.role == "code").limit(1))
    if fid is None:
        return error_page(request, 404, "Not found", "This submission has no stored train_gpt.py.")
    return redirect(f"/review/submissions/{submission_id}/files/{fid}")


@router.get("/submissions/{submission_id}/files/{file_id}", response_class=HTMLResponse)
def file_page(request: Request, submission_id: str, session: SessionDep,
              file_id: int = Path(ge=1, le=ROW_ID_MAX)) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    sub = _load(session, submission_id)
    f = session.get(SubmissionFile, file_id)
    if sub is None or f is None or f.submission_id != sub.id:
        return error_page(request, 404, "Not found", "No such file on this submission.")
    store = request.app.state.store
    try:
        data = store.read_bytes(f.sha256)
    except (OSError, ValueError):
        return error_page(request, 404, "Not found", "The stored file is missing from blob storage.")
    if not codeview.is_text(data):
        return error_page(request, 415, "Binary file",
                          f"{f.filename} is binary ({f.size} bytes, sha256 {f.sha256}); there is nothing to show as text.")
    lines, truncated = codeview.view_lines(data, f.filename)
    # Lines the rule evidence points at, so they stand out without following a link.
    marked: dict[int, list[str]] = {}
    files = views.files_of(session, sub)
    links = _file_links(sub, files)
    for r in views.current_rule_views(session, sub):
        for e in r.evidence:
            if e.line and e.file and links.get(e.file) == f.id:
                marked.setdefault(e.line, []).append(f"{r.rule}: {e.message or r.message or r.status}")
    return render(request, "review/file.html", {
        "title": f"{f.filename} — {sub.name or sub.id}", "sub": sub, "file": f, "lines": lines,
        "truncated": truncated, "marked": marked,
    }, headers={"Cache-Control": "no-store"})


@router.post("/submissions/{submission_id}/{action}", response_class=HTMLResponse)
def submission_action(request: Request, submission_id: str, action: str, session: SessionDep,
                      settings: SettingsDep, csrf_token: str = Form("", max_length=100),
                      reason: str = Form("", max_length=reviewer.MAX_REASON + 1),
                      rule_result_id: str = Form("", max_length=20), status: str = Form("", max_length=20)) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    if not same_origin(request) or not csrf_ok(v.csrf, csrf_token):
        return error_page(request, 403, "Forbidden", "The form's CSRF token did not match; reload the page and retry.")
    sub = _load(session, submission_id)
    if sub is None:
        return error_page(request, 404, "Not found", f"No submission {submission_id}.")
    try:
        if action == "override":
            try:
                rid = int(rule_result_id)
                if not 1 <= rid <= ROW_ID_MAX:
                    raise ValueError(rid)
            except ValueError:
                raise reviewer.ReviewError("say which rule result to override", 400) from None
            outcome = reviewer.override_rule(session, v.principal, sub.id, rid, status, reason)
        elif action in ACTIONS:
            outcome = ACTIONS[action](session, v.principal, sub.id, reason)
        else:
            raise reviewer.ReviewError(f"unknown action {action!r}", 404)
        session.commit()
    except reviewer.ReviewError as exc:
        session.rollback()
        ctx = _submission_context(session, settings, sub)
        ctx["error"] = exc.message
        ctx["error_action"] = action
        return render(request, "review/submission.html", ctx, status=exc.status, headers={"Cache-Control": "no-store"})
    reviewer.after_commit(settings, outcome)
    # No fragment: the page opens at the top, where the confirmation is (the forms are far below).
    return redirect(f"/review/submissions/{sub.id}?done={action}")


# -- audit log ----------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep,
               before: int | None = Query(None, ge=1, le=ROW_ID_MAX)) -> Response:
    # `before` is declared here too so an out-of-range id is the usual 422 problem, not a page.
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    try:
        q = audit_view.AuditQuery.parse(request.query_params)
    except ValueError as exc:
        return error_page(request, 400, "Bad request", f"{exc}.")
    rows, total = audit_view.page(session, q)
    pages = max(1, -(-total // audit_view.PAGE_SIZE))
    return render(request, "review/audit.html", {
        "title": "Audit log", "rows": rows, "total": total, "q": q, "f": q, "pages": pages,
        "page_size": audit_view.PAGE_SIZE, "choices": audit_view.choices(session), "urlencode": urlencode,
    }, headers={"Cache-Control": "no-store"})
