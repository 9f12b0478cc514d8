"""The public leaderboard (no token needed), with ETag and Cache-Control for cheap polling."""

from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.crud import normalise_track
from api.deps import SessionDep, SettingsDep
from api.leaderboard import build_leaderboard

router = APIRouter(prefix="/api/v1", tags=["leaderboard"])

CACHE_CONTROL = "public, max-age=15, must-revalidate"


@router.get("/leaderboard")
def leaderboard(request: Request, session: SessionDep, settings: SettingsDep,
                track: str | None = Query(None, max_length=100),
                limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> Response:
    body = build_leaderboard(session, track=normalise_track(track, settings.default_track), limit=limit, offset=offset)
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    inm = request.headers.get("if-none-match", "")
    if etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*":
        return Response(status_code=304, headers=headers)
    return JSONResponse(content=body, headers=headers)
