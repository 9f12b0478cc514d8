"""Server-rendered HTML pages: the public leaderboard and entry pages, the reviewer dashboard, and
the contestant pages (/me: upload, my submissions, withdraw / re-run).

Jinja2 templates in `api/http/templates/`, CSS and one small script in `api/http/static/`, charts drawn on
the server as inline SVG (`api.http.charts`). Pages read the same database as the JSON API, through
the same models and view functions; reviewer actions go through `api.core.reviewer`.

`install(app)` adds the page routers and mounts /static; `api.http.app.create_http_app` calls it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.http.pages import apidocs, contestant, public, review, review_tools

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(apidocs.router)
    app.include_router(public.router)
    # Before `review`: its POST /review/submissions/{id}/{action} would take /claim, /assign, /release.
    app.include_router(review_tools.router)
    app.include_router(review.router)
    app.include_router(contestant.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
