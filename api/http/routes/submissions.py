"""Submissions: upload (streamed to storage), status, per-chunk progress, listing."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.core import crud, lifecycle, quota
from api.http import admission
from api.core.auth import Principal
from api.http.bodydeadline import body_wait
from api.core.db import get_sessionmaker
from api.http.deps import PrincipalDep, SessionDep, SettingsDep, StoreDep, StrictQuery
from api.core.logsetup import bind
from api.core.models import Queue, State, Submission
from api.http.problems import Problem, quota_headers
from api.http.schemas import ChunkList, Quota, SubmissionAccepted, SubmissionDetail, SubmissionList
from api.core.settings import Settings
from api.core.storage import BlobStore
from api.http.uploads import ParsedUpload, UploadParser

log = logging.getLogger("golfcheck.api")
router = APIRouter(prefix="/api/v1", tags=["submissions"], dependencies=[StrictQuery])

_FILE = {"type": "string", "format": "binary"}
UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "anyOf": [{"required": ["artifact", "code"]}, {"required": ["bundle"]}],
            "properties": {
                "artifact": {**_FILE, "description": "the compressed model artifact (required unless bundle)"},
                "code": {**_FILE, "description": "train_gpt.py (required unless bundle)"},
                "config": {"type": "string", "description": "evaluation config JSON (file or text); defaults if absent"},
                "submission_json": {"type": "string", "description": "the challenge's submission.json (file or text)"},
                "logs": {"type": "array", "items": _FILE, "description": "zero or more train logs"},
                "bundle": {**_FILE, "description": "a .tar.gz or .zip of a records folder, instead of artifact + code"},
                "track": {"type": "string", "description": "leaderboard track, e.g. track_10min_16mb"},
            },
        }}},
    },
}


def _load_visible(session: Any, principal: Principal, submission_id: str) -> Submission:
    sub = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if sub is None:
        raise Problem("not-found", f"no submission {submission_id}")
    if sub.submitter_id != principal.user_id and not principal.can_review:
        raise Problem("forbidden", "submitters can only read their own submissions")
    return sub


def _store_upload(settings: Settings, store: BlobStore, principal: Principal,
                  upload: ParsedUpload) -> tuple[dict[str, Any], bool, bool]:
    """Commit the submission; returns (view, created, needs_enqueue)."""
    factory = get_sessionmaker(settings)
    with factory() as session:
        try:
            art, code = upload.one("artifact"), upload.one("code")
            key = crud.dedupe_key(art.blob.sha256, code.blob.sha256,  # type: ignore[union-attr]
                                  crud.sha256_text(upload.config_canonical))
            # Shared store lock from checking the files to the commit: no removal can slip between
            # (api.core.storage, "Blob lifetime").
            with store.lock(exclusive=False):
                gone = [f.filename for f in upload.files if not store.ensure(f.blob)]
                if gone:  # swept as orphans while a very slow upload was still running
                    raise Problem("service-unavailable", f"stored parts of the upload vanished "
                                  f"({', '.join(gone[:3])}); send it again", headers={"Retry-After": "1"})
                dup = crud.find_duplicate(session, submitter_id=principal.user_id, key=key)
                if dup is None or dup.state == State.FAILED.value:  # a new one, or a failed one queued again
                    # The authoritative check: the user's row is locked until the insert commits.
                    quota.enforce(quota.status(session, settings, principal.user_id, lock=True))
                sub, created = crud.create_submission(session, settings=settings, principal=principal,
                                                      upload=upload)
                session.commit()
        except IntegrityError:
            # Two identical uploads raced; the other one committed first and is the submission.
            session.rollback()
            art, code = upload.one("artifact"), upload.one("code")
            key = crud.dedupe_key(art.blob.sha256, code.blob.sha256,  # type: ignore[union-attr]
                                  crud.sha256_text(upload.config_canonical))
            found = crud.find_duplicate(session, submitter_id=principal.user_id, key=key)
            if found is None:
                raise
            sub, created = found, False
        store.release(upload.stored)
        upload.stored.clear()
        if not created:
            # Files only this request brought (e.g. different logs) are not referenced: remove them.
            store.remove_unreferenced(upload.created, functools.partial(lifecycle.referenced_blobs, settings))
        upload.created.clear()
        needs_enqueue = sub.state == State.QUEUED.value and sub.enqueued_at is None
        view = crud.submission_view(session, sub, for_reviewer=principal.can_review)
        view["quota"] = quota.status(session, settings, principal.user_id).to_dict()
    return view, created, needs_enqueue


class BodyClock:
    """The request body as an async iterator that enforces the upload deadline and, after the grace
    period, the minimum average rate: a stalled or trickling client gets 408 instead of holding a
    temp file and a connection open indefinitely (GOLFCHECK_UPLOAD_*, docs/service.md)."""

    def __init__(self, stream: AsyncIterator[bytes], settings: Settings):
        self._it = stream.__aiter__()
        self._s = settings
        self._start = time.monotonic()
        self.received = 0

    def __aiter__(self) -> "BodyClock":
        return self

    def _too_slow(self) -> Problem:
        s = self._s
        return Problem("request-timeout", f"the upload body arrived too slowly ({self.received} bytes in "
                       f"{time.monotonic() - self._start:.0f} s); an upload must finish within "
                       f"{s.upload_deadline_s:.0f} s at {s.upload_min_rate_bps} bytes/s or more",
                       headers={"Connection": "close"})

    async def __anext__(self) -> bytes:
        wait = body_wait(self._s, self.received, time.monotonic() - self._start)
        if wait <= 0:
            raise self._too_slow()
        try:
            chunk = await asyncio.wait_for(self._it.__anext__(), timeout=wait)
        except asyncio.TimeoutError:
            raise self._too_slow() from None
        self.received += len(chunk)
        return chunk


def _quota_now(settings: Settings, user_id: int) -> quota.QuotaStatus:
    with get_sessionmaker(settings)() as session:
        return quota.status(session, settings, user_id)


async def accept_upload(request: Request, principal: Principal, settings: Settings, store: BlobStore, *,
                        browser_form: bool = False) -> tuple[dict[str, Any], bool]:
    """Receive, validate, store and queue one upload: (submission view, created).

    The one upload path, shared by the REST route below and the contestant page's form
    (`browser_form`, see `api.http.uploads`): the same refusals, in the same order, with the same
    messages; refused input is never charged to the quota. Raises `Problem`, or `quota.LimitExceeded`
    for the rate limit, the daily quota and the in-progress cap."""
    # Refusals that need no body come first, so a refused client costs no bytes on disk.
    quota.check_rate(request.app.state.upload_limiter, principal.user_id)
    quota.enforce(await run_in_threadpool(_quota_now, settings, principal.user_id))
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_n = int(declared)
        except ValueError:
            raise Problem("invalid-request", "Content-Length is not a number") from None
        if declared_n > settings.max_request_bytes:
            # Refused from the headers alone: not one byte of the body is read.
            raise Problem("payload-too-large",
                          f"the request body ({declared_n} bytes) is larger than {settings.max_request_bytes} bytes",
                          limit_bytes=settings.max_request_bytes)
    parser = UploadParser(request.headers.get("content-type", ""), store, browser_form=browser_form,
                          max_file_bytes=settings.max_file_bytes, max_request_bytes=settings.max_request_bytes)
    try:
        body = BodyClock(request.stream(), settings)
        try:
            async for chunk in body:
                if chunk:
                    await run_in_threadpool(parser.feed, chunk)
        except Problem as exc:
            if declared is not None and exc.kind != "request-timeout":
                # The client declared a length within the limit: read (and discard) the rest so it
                # sees the error instead of a reset connection. Bounded by the request limit and
                # by the same deadline and minimum rate.
                try:
                    async for _ in body:
                        pass
                except Problem:
                    pass
            raise
        upload = await run_in_threadpool(parser.finish)
        await run_in_threadpool(admission.check_upload, upload, settings)
        view, created, needs_enqueue = await run_in_threadpool(_store_upload, settings, store, principal, upload)
    except BaseException as exc:
        await run_in_threadpool(parser.abort, functools.partial(lifecycle.referenced_blobs, settings))
        if isinstance(exc, ClientDisconnect):
            # Nobody is left to answer; say so in the log instead of as an unhandled error.
            log.info("upload abandoned: the client disconnected after %d bytes", parser.received)
            raise Problem("invalid-request", "the client disconnected before the upload ended") from None
        raise
    with bind(submission_id=view["id"], attempt=view["attempt"]):
        if needs_enqueue:
            await run_in_threadpool(lifecycle.send, settings, view["id"], Queue.CHECKS.value)
        log.info("submission %s by %s (%s)", "created" if created else "deduplicated", principal.name, view["state"])
    return view, created


@router.post("/submissions", status_code=202, openapi_extra=UPLOAD_SCHEMA, response_model=SubmissionAccepted,
             responses={200: {"model": SubmissionAccepted, "description": "an identical submission already exists"},
                        202: {"description": "accepted and queued"}})
async def create_submission(request: Request, principal: PrincipalDep, settings: SettingsDep,
                            store: StoreDep) -> JSONResponse:
    view, created = await accept_upload(request, principal, settings, store)
    view["duplicate"] = not created
    q = view["quota"]
    headers = {"Location": view["links"]["self"], "X-Quota-Limit": str(q["daily_limit"]),
               "X-Quota-Remaining": str(q["remaining"]), "X-Quota-Reset": q["resets_at"]}
    return JSONResponse(view, status_code=202 if created else 200, headers=headers)


@router.get("/quota", response_model=Quota)
def get_quota(principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """The caller's daily quota (UTC day), what is left of it, and when it resets."""
    q = quota.status(session, settings, principal.user_id)
    return JSONResponse(q.to_dict(), headers=quota_headers(q))


@router.get("/submissions", response_model=SubmissionList)
def list_submissions(principal: PrincipalDep, session: SessionDep,
                     state: State | None = None,
                     limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> JSONResponse:
    """Your submissions (a reviewer's token: everyone's), newest first; `total` counts all pages."""
    q = select(Submission)
    if not principal.can_review:
        q = q.where(Submission.submitter_id == principal.user_id)
    if state is not None:
        q = q.where(Submission.state == state.value)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = list(session.scalars(q.order_by(Submission.created_at.desc(), Submission.id).offset(offset).limit(limit)))
    return JSONResponse({"total": int(total), "limit": limit, "offset": offset, "submissions": [
        {"id": s.id, "state": s.state, "track": s.track, "name": s.name, "verdict": s.verdict,
         "measured_val_bpb": s.measured_val_bpb, "claimed_val_bpb": s.claimed_val_bpb,
         "created_at": crud._iso(s.created_at),
         "links": {"self": f"/api/v1/submissions/{s.id}", "chunks": f"/api/v1/submissions/{s.id}/chunks"}}
        for s in rows]})


@router.get("/submissions/{submission_id}", response_model=SubmissionDetail)
def get_submission(submission_id: str, principal: PrincipalDep, session: SessionDep) -> JSONResponse:
    sub = _load_visible(session, principal, submission_id)
    return JSONResponse(crud.submission_view(session, sub, for_reviewer=principal.can_review))


@router.get("/submissions/{submission_id}/chunks", response_model=ChunkList)
def get_chunks(submission_id: str, principal: PrincipalDep, session: SessionDep,
               attempt: int | None = Query(None, ge=1, le=1_000_000)) -> JSONResponse:
    sub = _load_visible(session, principal, submission_id)
    return JSONResponse(crud.chunk_view(session, sub, attempt))
