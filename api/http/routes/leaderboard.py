"""The public leaderboard (no token needed), with ETag and Cache-Control for cheap polling.

The hot path is served from memory: each API process keeps the serialised body and its ETag per
(track, limit, offset, runs) for `GOLFCHECK_LEADERBOARD_CACHE_S` seconds (default 2), then rebuilds it
in the background while still serving the old one, so a burst of anonymous polling costs one
database query per key and process every two seconds, not one per request, and no request waits
on a rebuild. The board is therefore at most about twice that stale, well inside the 15 s that
Cache-Control already allows clients. 0 switches the cache off (tests that publish and read back
at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.core.crud import configured_tracks, normalise_track
from api.http.deps import StrictQuery
from api.core.db import get_sessionmaker
from api.core.leaderboard import RUNS, build_leaderboard, known_tracks
from api.http.problems import Problem
from api.http.schemas import Leaderboard
from api.core.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["leaderboard"], dependencies=[StrictQuery])

CACHE_CONTROL = "public, max-age=15, must-revalidate"
Key = tuple[str, int, int, str]  # track, limit, offset, runs
MAX_CACHED_KEYS = 256  # the track is caller-chosen: bound what unknown tracks can make us remember


@dataclass(frozen=True)
class _Entry:
    built: float
    payload: bytes
    etag: str


class LeaderboardCache:
    """Per-process cache with stale-while-revalidate: within the TTL an entry is served as is; past
    it, the old entry is still served (for at most one more TTL) while one background task rebuilds
    it, so no request ever waits for a rebuild except the very first for its key."""

    def __init__(self) -> None:
        self._entries: dict[Key, _Entry] = {}
        self._refreshing: set[Key] = set()
        self._lock = asyncio.Lock()

    def fresh(self, key: Key, settings: Settings) -> _Entry | None:
        """The entry to serve now, or None when the caller must build it (no entry, or too old).
        Past the TTL this schedules a background rebuild; call it on the event loop."""
        hit = self._entries.get(key)
        ttl = settings.leaderboard_cache_s
        if hit is None or ttl <= 0:
            return None
        age = time.monotonic() - hit.built
        if age < ttl:
            return hit
        if age < 2 * ttl:
            if key not in self._refreshing:
                self._refreshing.add(key)
                asyncio.get_running_loop().create_task(self._refresh(settings, key))
            return hit
        return None

    async def _refresh(self, settings: Settings, key: Key) -> None:
        try:
            self._store(key, await run_in_threadpool(_build, settings, key))
        except Exception:  # noqa: BLE001 - the next request past 2×TTL rebuilds in the foreground
            pass
        finally:
            self._refreshing.discard(key)

    def _store(self, key: Key, entry: _Entry) -> None:
        if len(self._entries) >= MAX_CACHED_KEYS and key not in self._entries:
            self._entries.clear()
        self._entries[key] = entry

    async def get(self, settings: Settings, key: Key) -> _Entry:
        hit = self.fresh(key, settings)
        if hit is not None:
            return hit
        if settings.leaderboard_cache_s <= 0:
            return await run_in_threadpool(_build, settings, key)
        async with self._lock:  # one foreground build at a time; the others then find it
            hit = self.fresh(key, settings)
            if hit is not None:
                return hit
            entry = await run_in_threadpool(_build, settings, key)
            self._store(key, entry)
            return entry


def _build(settings: Settings, key: Key) -> _Entry:
    track, limit, offset, runs = key
    with get_sessionmaker(settings)() as session:
        known = known_tracks(session, configured_tracks(settings))
        if track not in known:
            # Never cached: only real tracks take a place in the cache.
            raise Problem("not-found", f"no track {track[:60]!r}; tracks: {', '.join(known)}")
        body = build_leaderboard(session, track=track, limit=limit, offset=offset,
                                 demo_max_val_tokens=settings.max_val_tokens, runs=runs)
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    return _Entry(time.monotonic(), payload, etag)


@router.get("/leaderboard", response_model=Leaderboard)
async def leaderboard(request: Request,
                      track: str | None = Query(None, max_length=100),
                      limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000),
                      runs: Literal["best", "all"] = Query("best", description="best: one row per participant and "
                                                           "method (their best run); all: every verified run")) -> Response:
    settings: Settings = request.app.state.settings
    cache: LeaderboardCache = request.app.state.leaderboard_cache
    entry = await cache.get(settings, (normalise_track(track, settings.default_track), limit, offset, runs))
    headers = {"ETag": entry.etag, "Cache-Control": CACHE_CONTROL}
    inm = request.headers.get("if-none-match", "")
    if entry.etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(content=entry.payload, media_type="application/json", headers=headers)


class LeaderboardFastPath:
    """Pure ASGI front for the hot path: a GET of the public leaderboard whose answer is fresh in
    the cache is sent straight from memory, without routing, dependency resolution or the
    per-request middleware (measured: bench/api_load.py, BENCHMARKS.md). Anything else — a cache
    miss, an unusual query, a parameter out of range — falls through to the normal route, which
    validates it, answers it and fills the cache."""

    PATH = "/api/v1/leaderboard"

    def __init__(self, app: Any, owner: Any):
        self.app, self.owner = app, owner

    def _key(self, scope: Any, settings: Settings) -> Key | None:
        params: dict[str, str] = {}
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if k in params or k not in ("track", "limit", "offset", "runs"):
                return None
            params[k] = v
        try:
            limit, offset = int(params.get("limit", "50")), int(params.get("offset", "0"))
        except ValueError:
            return None
        track, runs = params.get("track"), params.get("runs", "best")
        if not (1 <= limit <= 500 and 0 <= offset <= 1_000_000) or (track is not None and len(track) > 100) \
                or runs not in RUNS:
            return None
        return normalise_track(track, settings.default_track), limit, offset, runs

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.PATH:
            state = self.owner.state
            key = self._key(scope, state.settings)
            entry = state.leaderboard_cache.fresh(key, state.settings) if key is not None else None
            if entry is not None:
                inm = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), "")
                hit = entry.etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*"
                headers = [(b"etag", entry.etag.encode()), (b"cache-control", CACHE_CONTROL.encode())]
                if hit:
                    await send({"type": "http.response.start", "status": 304, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                else:
                    headers += [(b"content-type", b"application/json"),
                                (b"content-length", str(len(entry.payload)).encode())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": entry.payload})
                return
        await self.app(scope, receive, send)
