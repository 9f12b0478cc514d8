"""The contestant pages: sign in with an API token, upload a records folder, watch it run, read the
verdict with its evidence, and withdraw or re-run where the rules allow (`api.core.contestant`).

Routes (all under /me, none in the OpenAPI schema):
    GET  /me/login, POST /me/login, POST /me/logout
    GET  /me                               my submissions, newest first, with state and progress
    GET  /me/upload, POST /me/upload       the upload form (folder, bundle or separate files)
    GET  /me/submissions/{id}              one of my submissions: progress, verdict, evidence, actions
    GET  /me/submissions/{id}/live         the progress fragment the page polls while it runs
    POST /me/submissions/{id}/{action}     withdraw | rerun

Sign-in uses the reviewer pages' machinery (`api.http.pages.common`: the `web_sessions` row, cookie,
CSRF token, Origin check); any role may sign in here, and a submitter's session still opens no
reviewer page (`load_viewer` admits reviewers only). The upload goes through exactly the REST
route's code (`api.http.routes.submissions.accept_upload` with the browser-form reading of
`api.http.uploads`), so the same input gets the same refusal with the same message, and refused input
costs no quota. Its CSRF token travels in the form's URL, so a forged upload is refused before one
byte of its body is read. Another person's submission is "not found" here.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.core import contestant, quota
from api.core.crud import configured_tracks, queue_position, redact_paths, verification
from api.core.leaderboard import provenance
from api.core.models import Result, StateTransition, Submission
from api.core.reviewer import MAX_REASON, ReviewError, after_commit
from api.http.deps import SessionDep, SettingsDep, StoreDep
from api.http.pages import views
from api.http.pages.common import (
    login_principal,
    LOGIN_CSRF_COOKIE,
    Viewer,
    csrf_ok,
    error_page,
    load_session,
    redirect,
    render,
    safe_next,
    same_origin,
    set_cookie,
    sign_in,
    sign_out,
)
from api.http.pages.review import _live_context as review_live_context
from api.http.problems import Problem, limit_problem
from api.http.routes.submissions import accept_upload

router = APIRouter(prefix="/me", include_in_schema=False)

ROOT = "/me"
LOGIN_PATH = "/me/login"
PAGE = 50
NO_STORE = {"Cache-Control": "no-store"}
DONE_TEXT = {
    "uploaded": "Uploaded: the checks run first, then the evaluation. This page follows its progress.",
    "duplicate": "You had already uploaded exactly these files with this config: this is that submission.",
    "withdraw": "Withdrawn: it will not be evaluated further or published.",
    "rerun": "Queued again: the checks and the evaluation run as a new attempt.",
}
# Upload form inputs by the API field a refusal names (`Problem.extra["field"]`).
FIELD_INPUTS = {"folder": "f-folder", "bundle": "f-bundle", "artifact": "f-artifact", "code": "f-code",
                "config": "f-config", "submission_json": "f-submission-json", "logs": "f-logs", "track": "f-track"}


def _me(request: Request, session: Session) -> Viewer | None:
    """The signed-in person (any role). Reviewers also get the reviewer links in the header."""
    v = load_session(request, session)
    request.state.viewer = v if v is not None and v.principal.can_review else None
    request.state.me = v
    return v


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(LOGIN_PATH + "?" + urlencode({"next": target}))


def _page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    return render(request, name, {"me": getattr(request.state, "me", None), **ctx}, status=status, headers=NO_STORE)


# -- sign in / out --------------------------------------------------------------------------------


def _login_form(request: Request, *, next_url: str, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    resp = _page(request, "me/login.html", {"title": "Contestant sign-in", "next": next_url, "error": error,
                                            "csrf": token}, status=status)
    # Double-submit token for the login form itself (there is no session yet to hold one).
    set_cookie(resp, request, LOGIN_CSRF_COOKIE, token, max_age=3600, path=LOGIN_PATH)
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = Query(None, max_length=500)) -> Response:
    if _me(request, session) is not None:
        return redirect(safe_next(next, ROOT, root=ROOT))
    return _login_form(request, next_url=safe_next(next, ROOT, root=ROOT))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: SessionDep, token: str = Form("", max_length=300),
          csrf_token: str = Form("", max_length=100), next: str = Form(ROOT, max_length=500)) -> Response:
    next_url = safe_next(next, ROOT, root=ROOT)
    principal = login_principal(request, session, token, csrf_token)
    if isinstance(principal, tuple):
        return _login_form(request, next_url=next_url, status=principal[0], error=principal[1])
    return sign_in(request, session, principal, next_url=next_url, login_path=LOGIN_PATH, pages="contestant")


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf_token: str = Form("", max_length=100)) -> Response:
    return sign_out(request, session, _me(request, session), csrf_token, login_path=LOGIN_PATH)


# -- my submissions -------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def my_submissions(request: Request, session: SessionDep, settings: SettingsDep,
                   page: int = Query(1, ge=1, le=100_000)) -> Response:
    v = _me(request, session)
    if v is None:
        return _to_login(request)
    mine = select(Submission).where(Submission.submitter_id == v.principal.user_id)
    total = session.scalar(select(func.count()).select_from(mine.subquery())) or 0
    rows = list(session.scalars(mine.order_by(Submission.created_at.desc(), Submission.id)
                                .offset((page - 1) * PAGE).limit(PAGE)))
    return _page(request, "me/list.html", {
        "title": "My submissions", "rows": rows, "total": total, "page": page, "page_size": PAGE,
        "positions": {s.id: queue_position(session, s) for s in rows if s.state == "queued"},
        # The list reloads itself while something of yours is still moving, so its per-chunk
        # progress stays live without a script; it stops once every row has settled.
        "in_flight": any(s.state in quota.ACTIVE_STATES for s in rows),
        "quota": quota.status(session, settings, v.principal.user_id),
    })


# -- upload ---------------------------------------------------------------------------------------


def _upload_form(request: Request, session: Session, settings: Any, v: Viewer, *, problem: Problem | None = None,
                 status: int = 200) -> HTMLResponse:
    field = problem.extra.get("field") if problem is not None else None
    return _page(request, "me/upload.html", {
        "title": "Upload a submission", "tracks": configured_tracks(settings), "default_track": settings.default_track,
        "quota": quota.status(session, settings, v.principal.user_id),
        "error": (problem.detail or str(problem)) if problem is not None else None,
        "error_input": FIELD_INPUTS.get(field) if isinstance(field, str) else None,
        "max_request_bytes": settings.max_request_bytes,
    }, status=status)


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    v = _me(request, session)
    if v is None:
        return _to_login(request)
    return _upload_form(request, session, settings, v)


@router.post("/upload", response_class=HTMLResponse)
async def upload(request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep,
                 csrf_token: str = Query("", max_length=100)) -> Response:
    # Everything here is decided from the headers and the URL, before the body is read.
    v = await run_in_threadpool(_me, request, session)
    if v is None:
        return _to_login(request)
    if not same_origin(request) or not csrf_ok(v.csrf, csrf_token):
        return error_page(request, 403, "Forbidden", "The form expired or came from another site; "
                          "reload the upload page and send the files again.")
    session.close()  # the upload path opens its own sessions; do not hold a connection while it streams
    try:
        try:
            view, created = await accept_upload(request, v.principal, settings, store, browser_form=True)
        except quota.LimitExceeded as limit:
            raise limit_problem(limit) from None
    except Problem as exc:
        return await run_in_threadpool(_upload_form, request, session, settings, v, problem=exc, status=exc.status)
    return redirect(f"{ROOT}/submissions/{view['id']}?done={'uploaded' if created else 'duplicate'}")


# -- one submission -------------------------------------------------------------------------------


def _mine(session: Session, v: Viewer, submission_id: str) -> Submission | None:
    sub = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    return sub if sub is not None and sub.submitter_id == v.principal.user_id else None


def _not_found(request: Request, submission_id: str) -> HTMLResponse:
    return error_page(request, 404, "Not found", f"You have no submission {submission_id[:40]}.")


def _live_context(session: Session, sub: Submission) -> dict[str, Any]:
    """The reviewer page's progress fragment, polled at this page's URL, without worker hosts."""
    return {**review_live_context(session, sub), "live_url": f"{ROOT}/submissions/{sub.id}/live", "hide_worker": True}


def _detail_context(session: Session, sub: Submission) -> dict[str, Any]:
    rules = views.current_rule_views(session, sub)
    for r in rules:  # as the API shows them to a submitter: no server paths
        r.message = redact_paths(r.message)
        for e in r.evidence:
            e.message = redact_paths(e.message)
    result = session.get(Result, sub.result_id) if sub.result_id else None
    history = [{"at": t.at, "from_state": t.from_state, "to_state": t.to_state, "reason": redact_paths(t.reason)}
               for t in session.scalars(select(StateTransition).where(StateTransition.submission_id == sub.id)
                                        .order_by(StateTransition.at, StateTransition.id))]
    counted = sub.counted_bytes if sub.counted_bytes is not None else sub.artifact_bytes + sub.code_bytes
    return {
        "title": sub.name or sub.folder or sub.id, "rules": rules, "result": result, "history": history,
        "reason": redact_paths(sub.reason), "counted": counted, "files": views.files_of(session, sub),
        "verification": verification(sub, result), "prov": provenance(result),
        "public": views.ever_published(session, sub), "queue_position": queue_position(session, sub),
        "can_withdraw": contestant.can_withdraw(sub), "can_rerun": contestant.can_rerun(sub),
        "max_reason": MAX_REASON, **_live_context(session, sub),
    }


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(request: Request, submission_id: str, session: SessionDep,
                    done: str = Query("", max_length=20)) -> Response:
    v = _me(request, session)
    if v is None:
        return _to_login(request)
    sub = _mine(session, v, submission_id)
    if sub is None:
        return _not_found(request, submission_id)
    return _page(request, "me/submission.html", {**_detail_context(session, sub), "done": DONE_TEXT.get(done)})


@router.get("/submissions/{submission_id}/live", response_class=HTMLResponse)
def live_fragment(request: Request, submission_id: str, session: SessionDep) -> Response:
    v = _me(request, session)
    if v is None:
        return error_page(request, 401, "Signed out", "Your session ended; sign in again.")
    sub = _mine(session, v, submission_id)
    if sub is None:
        return _not_found(request, submission_id)
    return _page(request, "review/_live.html", _live_context(session, sub))


@router.post("/submissions/{submission_id}/{action}", response_class=HTMLResponse)
def submission_action(request: Request, submission_id: str, action: str, session: SessionDep,
                      settings: SettingsDep, csrf_token: str = Form("", max_length=100),
                      reason: str = Form("", max_length=MAX_REASON + 1)) -> Response:
    v = _me(request, session)
    if v is None:
        return _to_login(request)
    if not same_origin(request) or not csrf_ok(v.csrf, csrf_token):
        return error_page(request, 403, "Forbidden", "The form's CSRF token did not match; reload the page and retry.")
    if _mine(session, v, submission_id) is None:
        return _not_found(request, submission_id)
    try:
        if action == "withdraw":
            outcome = contestant.withdraw(session, v.principal, submission_id, reason)
        elif action == "rerun":
            outcome = contestant.rerun(session, settings, v.principal, submission_id, reason)
        else:
            return error_page(request, 404, "Not found", f"There is no action {action[:20]!r}.")
        session.commit()
    except (ReviewError, quota.LimitExceeded) as exc:
        session.rollback()
        sub = _mine(session, v, submission_id)
        if sub is None:
            return _not_found(request, submission_id)
        if isinstance(exc, quota.LimitExceeded):
            problem = limit_problem(exc)
            message, status = problem.detail or str(problem), problem.status
        else:
            message, status = exc.message, exc.status
        return _page(request, "me/submission.html", {**_detail_context(session, sub), "error": message,
                                                     "error_action": action}, status=status)
    after_commit(settings, outcome)
    return redirect(f"{ROOT}/submissions/{submission_id}?done={action}")
