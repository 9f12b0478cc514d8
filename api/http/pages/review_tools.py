"""Reviewer tools beyond the single-submission page: claiming and assigning queue items, bulk
actions, code diffs, and the CSV/JSON export of the (filtered) queue.

Routes (all under /review, none in the OpenAPI schema; every one needs a reviewer session):
    POST /review/submissions/{id}/claim | assign | release   → back to the page with a confirmation
    POST /review/bulk                                       one action on the selected items; a per-item summary
    GET  /review/submissions/{id}/diff?against=previous|record&view=split|unified&full=1
    GET  /review/export.csv, /review/export.json            the queue's filters, every matching row

The logic lives in plain modules (`api.core.review_claims`, `api.core.review_bulk`, `api.core.code_diff`,
`api.core.review_queue`); this module only reads the request, checks the session and CSRF token, and
renders. It is included before `api.http.pages.review`, whose `POST /submissions/{id}/{action}`
would otherwise take the claim routes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import select

from api.core import code_diff, review_bulk, review_claims, review_queue, reviewer
from api.http.deps import SessionDep, SettingsDep
from api.core.models import AuditLog, Submission, SubmissionFile, User
from api.http.pages import code as codeview
from api.http.pages.common import SECURITY_HEADERS, csrf_ok, error_page, redirect, render, safe_next, same_origin
from api.http.pages.review import _load, _to_login, _viewer

router = APIRouter(prefix="/review", include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


def _forbidden(request: Request) -> Response:
    return error_page(request, 403, "Forbidden", "The form's CSRF token did not match; reload the page and retry.")


# -- claim / assign / release ----------------------------------------------------------------------


def _claim_action(request: Request, session: Any, submission_id: str, action: str, csrf_token: str,
                  assignee: str, reason: str, back: str) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    if not same_origin(request) or not csrf_ok(v.csrf, csrf_token):
        return _forbidden(request)
    sub = _load(session, submission_id)
    if sub is None:
        return error_page(request, 404, "Not found", f"No submission {submission_id}.")
    try:
        if action == "assign":
            review_claims.assign(session, v.principal, sub.id, assignee, reason)
        elif action == "claim":
            review_claims.claim(session, v.principal, sub.id, reason)
        else:
            review_claims.release(session, v.principal, sub.id, reason)
        session.commit()
    except reviewer.ReviewError as exc:
        session.rollback()
        return error_page(request, exc.status, f"Could not {action}", exc.message)
    target = safe_next(back, default=f"/review/submissions/{sub.id}")
    sep = "&" if "?" in target else "?"
    return redirect(f"{target}{sep}{urlencode({'done': action})}")


@router.post("/submissions/{submission_id}/claim", response_class=HTMLResponse)
def claim(request: Request, submission_id: str, session: SessionDep, csrf_token: str = Form("", max_length=100),
          reason: str = Form("", max_length=reviewer.MAX_REASON + 1), back: str = Form("", max_length=500)) -> Response:
    return _claim_action(request, session, submission_id, "claim", csrf_token, "", reason, back)


@router.post("/submissions/{submission_id}/assign", response_class=HTMLResponse)
def assign(request: Request, submission_id: str, session: SessionDep, csrf_token: str = Form("", max_length=100),
           assignee: str = Form("", max_length=100), reason: str = Form("", max_length=reviewer.MAX_REASON + 1),
           back: str = Form("", max_length=500)) -> Response:
    return _claim_action(request, session, submission_id, "assign", csrf_token, assignee, reason, back)


@router.post("/submissions/{submission_id}/release", response_class=HTMLResponse)
def release(request: Request, submission_id: str, session: SessionDep, csrf_token: str = Form("", max_length=100),
            reason: str = Form("", max_length=reviewer.MAX_REASON + 1), back: str = Form("", max_length=500)) -> Response:
    return _claim_action(request, session, submission_id, "release", csrf_token, "", reason, back)


# -- bulk actions ------------------------------------------------------------------------------------


@router.post("/bulk", response_class=HTMLResponse)
def bulk(request: Request, session: SessionDep, settings: SettingsDep, csrf_token: str = Form("", max_length=100),
         action: str = Form("", max_length=20), reason: str = Form("", max_length=reviewer.MAX_REASON + 1),
         ids: list[str] = Form([]), back: str = Form("", max_length=2000)) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    if not same_origin(request) or not csrf_ok(v.csrf, csrf_token):
        return _forbidden(request)
    back_url = safe_next("/review" + (f"?{back}" if back else ""))
    try:
        results = review_bulk.apply(session, settings, v.principal, action, ids, reason)
    except reviewer.ReviewError as exc:
        session.rollback()
        return error_page(request, exc.status, "Nothing was done", exc.message)
    done = sum(r.ok for r in results)
    return render(request, "review/bulk.html", {
        "title": "Bulk action", "action": action, "results": results, "done": done,
        "refused": len(results) - done, "back": back_url,
    }, headers=NO_STORE)


# -- code diff -------------------------------------------------------------------------------------


def _code_file(session: Any, sub: Submission) -> SubmissionFile | None:
    """The stored train_gpt.py (the blob the code rules read), not a helper module of a bundle."""
    return session.scalar(select(SubmissionFile).where(SubmissionFile.submission_id == sub.id,
                                                       SubmissionFile.role == "code",
                                                       SubmissionFile.sha256 == sub.code_sha256)
                          .order_by(SubmissionFile.id).limit(1))


def _highlighted(text: str, filename: str) -> dict[int, Markup]:
    lines = codeview.highlight_python(text) if filename.endswith(".py") else codeview.plain_lines(text)
    return {ln.number: ln.html for ln in lines}


@router.get("/submissions/{submission_id}/diff", response_class=HTMLResponse)
def diff_page(request: Request, submission_id: str, session: SessionDep,
              against: str = Query("previous", max_length=20), view: str = Query("split", max_length=10),
              full: str = Query("", max_length=1)) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    sub = _load(session, submission_id)
    if sub is None:
        return error_page(request, 404, "Not found", f"No submission {submission_id}.")
    if against not in code_diff.TARGETS:
        return error_page(request, 400, "Bad request", f"against must be one of {', '.join(code_diff.TARGETS)}.")
    if view not in ("split", "unified"):
        return error_page(request, 400, "Bad request", "view must be split or unified.")
    other = code_diff.target(session, sub, against)
    ctx: dict[str, Any] = {"title": f"Code diff — {sub.name or sub.id}", "sub": sub, "other": other,
                           "against": against, "view": view, "full": full == "1", "diff": None,
                           "holds_record": against == "record" and code_diff.holds_record(session, sub)}
    if other is not None:
        new_file, old_file = _code_file(session, sub), _code_file(session, other)
        store = request.app.state.store
        try:
            new_text, cut_new = code_diff.decode(store.read_bytes(sub.code_sha256))
            old_text, cut_old = code_diff.decode(store.read_bytes(other.code_sha256))
        except (OSError, ValueError):
            return error_page(request, 404, "Not found", "A stored train_gpt.py is missing from blob storage.")
        ctx.update({
            "diff": code_diff.diff_text(old_text, new_text, context=None if full == "1" else code_diff.CONTEXT,
                                        truncated=cut_new or cut_old),
            "old_html": _highlighted(old_text, "train_gpt.py"), "new_html": _highlighted(new_text, "train_gpt.py"),
            "old_link": f"/review/submissions/{other.id}/files/{old_file.id}" if old_file else None,
            "new_link": f"/review/submissions/{sub.id}/files/{new_file.id}" if new_file else None,
            "other_submitter": session.scalar(select(User.name).where(User.id == other.submitter_id)),
        })
    return render(request, "review/diff.html", ctx, headers=NO_STORE)


# -- export ------------------------------------------------------------------------------------------


def _export(request: Request, session: Any, fmt: str) -> Response:
    v = _viewer(request, session)
    if v is None:
        return _to_login(request)
    try:
        q = review_queue.QueueQuery.parse(request.query_params)
    except ValueError as exc:
        return error_page(request, 400, "Bad request", f"{exc}.")
    rows = review_queue.export_rows(session, q)
    session.add(AuditLog(actor=v.principal.actor, user_id=v.principal.user_id, action="review.export",
                         details=json.dumps({"format": fmt, "rows": len(rows), "filters": q.params(page=1)})))
    session.commit()
    name = f"golfcheck-queue.{fmt}"
    headers = {**SECURITY_HEADERS, **NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return Response(review_queue.to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    body = {"filters": q.params(page=1), "count": len(rows), "limit": review_queue.EXPORT_MAX_ROWS,
            "columns": list(review_queue.EXPORT_COLUMNS), "rows": rows}
    return Response(json.dumps(body, indent=1), media_type="application/json", headers=headers)


@router.get("/export.csv")
def export_csv(request: Request, session: SessionDep) -> Response:
    return _export(request, session, "csv")


@router.get("/export.json")
def export_json(request: Request, session: SessionDep) -> Response:
    return _export(request, session, "json")
