"""FastAPI dependencies: settings, a database session, and the authenticated principal."""

from __future__ import annotations

from typing import Annotated, Any, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.core.auth import Principal, authenticate
from api.core.db import get_sessionmaker
from api.http.problems import Problem
from api.core.settings import Settings
from api.core.storage import BlobStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_store(request: Request) -> BlobStore:
    return request.app.state.store  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    session = get_sessionmaker(request.app.state.settings)()
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="golfcheck"'}


def current_principal(request: Request, session: SessionDep) -> Principal:
    """The caller, from `Authorization: Bearer <token>`; 401 problem otherwise.

    Runs before the request body is read, so an unauthenticated upload is refused without
    receiving the files."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Problem("unauthorized", "send Authorization: Bearer <token>", headers=_CHALLENGE)
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem("unauthorized", "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    principal = authenticate(session, token.strip())
    if principal is None:
        raise Problem("invalid-token", headers={"WWW-Authenticate": 'Bearer realm="golfcheck", error="invalid_token"'})
    session.commit()  # last_used_at
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def reject_unknown_query(request: Request) -> None:
    """JSON API routes refuse query parameters they do not define (422), so a misspelt `limt=5` is
    an error, not silently the default, and the API does exactly what its OpenAPI document says."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    names = _QUERY_NAMES.get(id(route))
    if names is None:
        def walk(dep: Any) -> set[str]:
            out = {p.alias for p in getattr(dep, "query_params", ())}
            for sub in getattr(dep, "dependencies", ()):
                out |= walk(sub)
            return out

        dependant = getattr(route, "dependant", None)
        if dependant is None:
            return
        names = _QUERY_NAMES[id(route)] = frozenset(walk(dependant))
    extra = sorted(set(request.query_params) - names)
    if extra:
        shown = ", ".join(repr(e[:40]) for e in extra[:5])
        raise Problem("validation-error", f"unknown query parameter(s) {shown}; this route takes "
                      f"{', '.join(sorted(names)) or 'none'}")


StrictQuery = Depends(reject_unknown_query)

# Row ids are PostgreSQL `integer` columns: a larger number in a path or query is refused with a
# 422 problem instead of reaching the database as an out-of-range value (a 500).
ROW_ID_MAX = 2**31 - 1
