"""API tokens: creation, lookup and revocation. Tokens are stored only as sha256 hashes.

A token is `gc_` + 43 URL-safe characters (256 random bits). It is shown once, when created;
the database keeps its hash and an 8-character prefix so an operator can tell tokens apart in
listings. Lookup hashes the presented token and compares hashes, so the database never sees or
stores a usable secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.db import utcnow
from api.core.models import ApiToken, AuditLog, Role, User

TOKEN_PREFIX = "gc_"
# Updating last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: Role
    token_id: int

    @property
    def actor(self) -> str:
        return f"user:{self.name}"

    @property
    def can_review(self) -> bool:
        return self.role in (Role.REVIEWER, Role.ADMIN)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}") from None


def create_token(session: Session, *, name: str, role: Role, actor: str = "cli") -> tuple[User, ApiToken, str]:
    """Create (or reuse) the user NAME with ROLE and issue a new token. Returns the plaintext once."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("a token name must be 1 to 100 characters")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=role.value)
        session.add(user)
        session.flush()
    elif user.role != role.value:
        session.add(AuditLog(actor=actor, user_id=user.id, action="user.role_changed",
                             details=json.dumps({"from": user.role, "to": role.value})))
        user.role = role.value
    token = new_token()
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[: len(TOKEN_PREFIX) + 8])
    session.add(row)
    session.flush()
    session.add(AuditLog(actor=actor, user_id=user.id, action="token.created",
                         details=json.dumps({"token_id": row.id, "role": role.value, "name": name})))
    return user, row, token


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal for a presented token, or None if it is unknown, revoked, expired or disabled."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The index lookup compares hashes of a 256-bit secret (timing reveals nothing an attacker can
    # steer); the final comparison is constant-time anyway, so no path compares secrets bytewise.
    if row is None or not hmac.compare_digest(row.token_hash.encode(), digest.encode()):
        return None
    if row.revoked_at is not None:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Principal(user_id=user.id, name=user.name, role=Role(user.role), token_id=row.id)


def revoke_tokens(session: Session, *, token_id: int | None = None, token: str | None = None,
                  name: str | None = None, reason: str | None = None, actor: str = "cli") -> list[ApiToken]:
    """Revoke one token (by id or value) or all tokens of a user; returns the rows revoked now."""
    q = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if token_id is not None:
        q = q.where(ApiToken.id == token_id)
    elif token is not None:
        q = q.where(ApiToken.token_hash == hash_token(token))
    elif name is not None:
        q = q.join(User, User.id == ApiToken.user_id).where(User.name == name)
    else:
        raise ValueError("say which token to revoke")
    rows = list(session.scalars(q))
    now = utcnow()
    for row in rows:
        row.revoked_at = now
        row.revoked_reason = reason
        session.add(AuditLog(actor=actor, user_id=row.user_id, action="token.revoked",
                             details=json.dumps({"token_id": row.id, "reason": reason})))
    return rows
