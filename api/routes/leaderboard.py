"""The public leaderboard (no token needed), with ETag and Cache-Control for cheap polling.

The hot path is served from memory: each API process keeps the serialised body and its ETag per
(track, limit, offset) for `GOLFCHECK_LEADERBOARD_CACHE_S` seconds (default 2), so a burst of
anonymous polling costs one database query per key and process every two seconds, not one per
request. The board is therefore at most that stale, well inside the 15 s that Cache-Control
already allows clients. 0 switches the cache off (tests that publish and read back at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.crud import normalise_track
from api.deps import StrictQuery
from api.db import get_sessionmaker
from api.leaderboard import build_leaderboard
from api.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["leaderboard"], dependencies=[StrictQuery])

CACHE_CONTROL = "public, max-age=15, must-revalidate"
MAX_CACHED_KEYS = 256  # the track is caller-chosen: bound what unknown tracks can make us remember


@dataclass(frozen=True)
class _Entry:
    expires: float
    payload: bytes
    etag: str


class LeaderboardCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, int], _Entry] = {}
        self._lock = asyncio.Lock()

    async def get(self, settings: Settings, key: tuple[str, int, int]) -> _Entry:
        ttl = settings.leaderboard_cache_s
        hit = self._entries.get(key)
        if ttl > 0 and hit is not None and hit.expires > time.monotonic():
            return hit
        if ttl <= 0:
            return await run_in_threadpool(_build, settings, key, 0.0)
        async with self._lock:  # one rebuild at a time; the others then find it fresh
            hit = self._entries.get(key)
            if hit is not None and hit.expires > time.monotonic():
                return hit
            entry = await run_in_threadpool(_build, settings, key, ttl)
            if len(self._entries) >= MAX_CACHED_KEYS:
                self._entries.clear()
            self._entries[key] = entry
            return entry


def _build(settings: Settings, key: tuple[str, int, int], ttl: float) -> _Entry:
    track, limit, offset = key
    with get_sessionmaker(settings)() as session:
        body = build_leaderboard(session, track=track, limit=limit, offset=offset)
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    return _Entry(time.monotonic() + ttl, payload, etag)


@router.get("/leaderboard")
async def leaderboard(request: Request,
                      track: str | None = Query(None, max_length=100),
                      limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> Response:
    settings: Settings = request.app.state.settings
    cache: LeaderboardCache = request.app.state.leaderboard_cache
    entry = await cache.get(settings, (normalise_track(track, settings.default_track), limit, offset))
    headers = {"ETag": entry.etag, "Cache-Control": CACHE_CONTROL}
    inm = request.headers.get("if-none-match", "")
    if entry.etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(content=entry.payload, media_type="application/json", headers=headers)
