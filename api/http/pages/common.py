"""Shared pieces of the HTML pages: the Jinja2 environment, formatting filters, security headers,
and reviewer browser sessions (cookie + CSRF).

Sessions: logging in with a reviewer token creates a `web_sessions` row; the cookie holds a
random 256-bit value whose sha256 is the row id. Every request re-checks the session's token and
user (revoked token, disabled user or a role change end the session at once). Forms that change
anything carry the session's CSRF token; the server also refuses a POST whose Origin (when the
browser sends one) is not this site. The cookie is HttpOnly and SameSite=Lax, and Secure when the
request came over HTTPS.

The same sessions sign contestants in on their own pages (api.http.pages.contestant, any role):
`load_session` returns whoever is signed in, `load_viewer` only a reviewer or admin, so a
submitter's session never opens a reviewer page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import posixpath
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session

from api.http import charts
from api.core.auth import Principal, authenticate
from api.core.db import utcnow
from api.core.models import ApiToken, AuditLog, Role, User, WebSession

HTTP_DIR = Path(__file__).resolve().parent.parent  # api/http: templates/ and static/
templates = Jinja2Templates(directory=str(HTTP_DIR / "templates"))

SESSION_COOKIE = "golfcheck_session"
LOGIN_CSRF_COOKIE = "golfcheck_login_csrf"
SESSION_LIFETIME = dt.timedelta(hours=12)
SEEN_RESOLUTION = dt.timedelta(minutes=1)  # do not turn every page view into a write

# Pages load only their own CSS and JS (no inline script), so a strict policy costs nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


# -- formatting ----------------------------------------------------------------------------------


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} MB"
    if n >= 1_000:
        return f"{n / 1e3:.1f} kB"
    return f"{n} B"


def fmt_exact_bytes(n: int | None) -> str:
    """Every byte, grouped: near the cap, 15,996,697 must not round to a "16.00 MB" that reads as over."""
    return "–" if n is None else f"{n:,} B"


def fmt_bpb(v: float | None, digits: int = 5) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def fmt_when(v: dt.datetime | str | None) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return v.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def fmt_iso(v: dt.datetime | None) -> str:
    return v.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if v else ""


def fmt_age(v: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if v is None:
        return "–"
    s = max(0, int(((now or utcnow()) - v).total_seconds()))
    if s < 90:
        return f"{s} s"
    if s < 90 * 60:
        return f"{s // 60} min"
    if s < 48 * 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def fmt_seconds(v: float | None) -> str:
    if v is None:
        return "–"
    v = float(v)
    if v < 90:
        return f"{v:.1f} s"
    if v < 5400:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def pretty_json(v: Any) -> str:
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return v
    return json.dumps(v, indent=2, sort_keys=True, default=str)


templates.env.filters.update(bytes=fmt_bytes, exact_bytes=fmt_exact_bytes, bpb=fmt_bpb, when=fmt_when, iso=fmt_iso, age=fmt_age,
                             seconds=fmt_seconds, pretty_json=pretty_json)
templates.env.globals.update(size_bar=charts.size_bar)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def render(request: Request, name: str, context: dict[str, Any], status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    ctx = {"viewer": getattr(request.state, "viewer", None), **context}
    resp = templates.TemplateResponse(request, name, ctx, status_code=status)
    for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
        resp.headers[k] = v
    return resp


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


# -- sessions -----------------------------------------------------------------------------------


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class Viewer:
    """The logged-in reviewer of this request (a `Principal` plus the session's CSRF token)."""

    def __init__(self, principal: Principal, csrf: str, session_id: str):
        self.principal = principal
        self.csrf = csrf
        self.session_id = session_id

    @property
    def name(self) -> str:
        return self.principal.name


def open_session(db: Session, principal: Principal) -> str:
    """A new session for a reviewer; returns the cookie value (shown to nobody else)."""
    value = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(WebSession(id=_hash(value), user_id=principal.user_id, token_id=principal.token_id,
                      csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                      expires_at=now + SESSION_LIFETIME))
    return value


def load_viewer(request: Request, db: Session) -> Viewer | None:
    """The reviewer behind the session cookie, or None (no cookie, expired, revoked, not a reviewer)."""
    v = load_session(request, db)
    return v if v is not None and v.principal.can_review else None


def load_session(request: Request, db: Session) -> Viewer | None:
    """Whoever is signed in behind the session cookie, whatever their role, or None (no cookie,
    expired, ended, revoked token, disabled user)."""
    value = request.cookies.get(SESSION_COOKIE, "")
    if not value or len(value) > 100:
        return None
    row = db.get(WebSession, _hash(value))
    now = utcnow()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    token = db.get(ApiToken, row.token_id)
    user = db.get(User, row.user_id)
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if user is None or user.disabled_at is not None:
        return None
    principal = Principal(user_id=user.id, name=user.name, role=Role(user.role), token_id=token.id)
    if now - row.last_seen_at > SEEN_RESOLUTION:
        row.last_seen_at = now
        db.commit()
    return Viewer(principal, row.csrf_token, row.id)


def end_session(db: Session, viewer: Viewer) -> None:
    row = db.get(WebSession, viewer.session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another site (Origin, else Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        # Browsers send Origin on every cross-site POST; its absence means a same-site or
        # non-browser client, which the CSRF token still covers.
        return source != "null"
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", request.url.netloc)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def set_cookie(resp: Any, request: Request, name: str, value: str, max_age: int, path: str = "/") -> None:
    resp.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https")


def redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a POST's redirect with a GET (post/redirect/get).
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str = "/review", root: str = "/review") -> str:
    """Only local paths under `root`, normalised: a login form must not become an open redirect, and
    what it redirects to is the path it names once percent-escapes and dot segments are resolved
    (`/review/%2e%2e/metrics` is `/metrics`, which is refused)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    path = unquote(parts.path)
    if not path.startswith("/") or any(ord(c) < 0x21 or c in "\\\x7f" for c in path + parts.query):
        return default
    norm = posixpath.normpath(path)
    if norm != root and not norm.startswith(root + "/"):
        return default
    return quote(norm, safe="/-._~") + (f"?{parts.query}" if parts.query else "")


def chart_markup(rows: list[Any], claimed: float | None, total: int | None = None) -> dict[str, Markup]:
    """Both per-chunk charts for a list of chunk rows (running BPB; score/train seconds)."""
    bpb = charts.line_chart([r.running_bpb for r in rows], title="Running BPB per chunk",
                            y_label="running BPB", ref=claimed, ref_label="claimed" if claimed is not None else "",
                            x_total=total)
    secs = charts.stacked_bars([(r.score_seconds, r.train_seconds) for r in rows], ["score seconds", "train seconds"],
                               title="Score and train seconds per chunk")
    return {"bpb": bpb, "seconds": secs}


def sign_in(request: Request, db: Session, principal: Principal, *, next_url: str, login_path: str,
            **details: Any) -> RedirectResponse:
    """Open a web session for a token just accepted by a login form, audit it, set the session
    cookie and drop the login form's CSRF cookie (one path for the reviewer and contestant pages)."""
    value = open_session(db, principal)
    db.add(AuditLog(actor=principal.actor, user_id=principal.user_id, action="web.login",
                    details=json.dumps({"token_id": principal.token_id, **details})))
    db.commit()
    resp = redirect(next_url)
    set_cookie(resp, request, SESSION_COOKIE, value, max_age=int(SESSION_LIFETIME.total_seconds()))
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path=login_path)
    return resp


def sign_out(request: Request, db: Session, viewer: Viewer | None, csrf_token: str, *,
             login_path: str) -> HTMLResponse | RedirectResponse:
    """End the viewer's web session (a form with a stale CSRF token is refused) and go to the login page."""
    if viewer is not None:
        if not csrf_ok(viewer.csrf, csrf_token):
            return error_page(request, 403, "Forbidden", "The form's CSRF token did not match; reload the page.")
        end_session(db, viewer)
        db.add(AuditLog(actor=viewer.principal.actor, user_id=viewer.principal.user_id, action="web.logout"))
        db.commit()
    resp = redirect(login_path)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


def login_principal(request: Request, session: Session, token: str, csrf_token: str) -> Principal | tuple[int, str]:
    """The principal a sign-in form's token names, or the (status, message) to show the form again
    with: a form from another site or an expired one (403), an unknown token (401). Shared by the
    reviewer and contestant sign-in pages, which then check what the principal may do."""
    if not same_origin(request) or not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return 403, "The form expired or came from another site; please sign in again."
    principal = authenticate(session, token.strip())
    if principal is None:
        session.rollback()
        return 401, "Unknown, revoked or expired token. Paste the whole token, starting with gc_."
    return principal

