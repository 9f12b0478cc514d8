"""Service commands of `golfcheck`: serve, migrate, token, submit, status, submissions, ingest,
leaderboard.

Every command reads the same settings (`api.core.settings.get_settings()`), so `golfcheck token create`
and `golfcheck ingest` act on the database `golfcheck serve` uses, from whatever directory they
run (the data directory never depends on the current one; those commands print it). Commands
that touch the database bring its schema to head first (idempotent). `submit`, `status` and
`submissions` talk HTTP to a server (`--server`, default GOLFCHECK_SERVER) with a token
(`--token`, default GOLFCHECK_TOKEN); `leaderboard` does too when a server is named, else it
reads the local database (and refuses to create one).

Every `golfcheck` command builds this module's parser, so the database layer (SQLAlchemy, Celery
and Alembic through api.core: about 4 s of start-up on the development machine), the web stack of
`serve` (api.main, uvicorn: 1.6 s) and the HTTP client (httpx, tqdm: 0.5 s) are imported inside
the commands that use them: `golfcheck check` and `golfcheck evaluate` must not pay for them.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import hashlib
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from api.core.settings import DEFAULT_SERVER, SettingsError, get_settings
from gepa.compliance import check_record, load_record, rank_entries
from gepa.errors import InputError

ARTIFACT_SUFFIXES = (".ptz", ".pt")
CONFIG_NAMES = ("eval.json", "eval_config.json", "config.json", "golfcheck.json")
FINAL = ("published", "rejected", "failed", "withdrawn")


class ServiceError(InputError):
    kind = "service"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the service (embedded default: SQLite, local files, in-process worker)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--worker", dest="worker", action="store_true", default=None,
                   help="run the in-process worker (default: only with the in-memory broker)")
    g.add_argument("--no-worker", dest="worker", action="store_false", help="API only")
    p.add_argument("--log-format", choices=("auto", "text", "json"), default=None,
                   help="auto (default, or GOLFCHECK_LOG_JSON): text lines in a terminal, JSON lines otherwise")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="bring the database schema to the newest revision")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("token", help="manage API tokens")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    t = tsub.add_parser("create", help="create a token; it is printed once, alone on the last line of stdout")
    t.add_argument("--role", required=True, choices=("submitter", "reviewer", "admin"))
    t.add_argument("--name", required=True, help="the user the token belongs to (created if new)")
    t.set_defaults(func=cmd_token_create)
    t = tsub.add_parser("revoke", help="revoke a token by id or value, or all tokens of a user")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--id", type=int, dest="token_id")
    g.add_argument("--token", dest="token_value")
    g.add_argument("--name", dest="user_name", help="revoke every token of this user")
    t.add_argument("--reason")
    t.set_defaults(func=cmd_token_revoke)
    t = tsub.add_parser("list", help="list tokens (prefix, user, role, state)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_token_list)

    p = sub.add_parser("submit", help="upload a records folder or files to a golfcheck server")
    p.add_argument("paths", nargs="+", metavar="DIR_OR_FILES")
    p.add_argument("--server", help="server URL (default GOLFCHECK_SERVER or http://127.0.0.1:8000)")
    p.add_argument("--token", help="API token (default GOLFCHECK_TOKEN)")
    p.add_argument("--config", type=Path, help="evaluation config JSON (default: eval.json in the folder, else defaults)")
    p.add_argument("--track", help="leaderboard track")
    p.add_argument("--wait", action="store_true", help="follow the submission until it finishes")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between status polls with --wait")
    p.add_argument("--json", action="store_true", help="print the final submission as JSON")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="show a submission's state, verdict and progress")
    p.add_argument("submission_id", metavar="ID", help="the submission id, or a unique prefix of it (the 8 "
                                                       "characters `golfcheck submissions` and the queue show)")
    p.add_argument("--server", help="server URL (default GOLFCHECK_SERVER or http://127.0.0.1:8000)")
    p.add_argument("--token", help="API token (default GOLFCHECK_TOKEN)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("submissions", help="list my submissions on a server (newest first)")
    p.add_argument("--server", help="server URL (default GOLFCHECK_SERVER or http://127.0.0.1:8000)")
    p.add_argument("--token", help="API token (default GOLFCHECK_TOKEN)")
    p.add_argument("--state", help="only submissions in this state (e.g. published, rejected, evaluating)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50, at most 500)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_submissions)

    p = sub.add_parser("ingest", help="load historical record folders (claimed numbers) into the leaderboard")
    p.add_argument("records_root", type=Path, metavar="RECORDS_ROOT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("leaderboard", help="print the leaderboard (from a server, or the local service database)")
    p.add_argument("--server", help="read it from this server (default GOLFCHECK_SERVER); without one, read the "
                                    "local database that `golfcheck serve` uses")
    p.add_argument("--track", help="track (default: the server's default track)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--all-runs", action="store_true", help="every verified run, not each participant's best per method")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_leaderboard)


# -- database commands ---------------------------------------------------------------------------


def _settings() -> Any:
    try:
        return get_settings()
    except SettingsError as exc:
        raise InputError(str(exc)) from None


def _db_name(settings: Any) -> str:
    return f"the database {settings.db_path}" if settings.db_path else "the configured database"


def _ready_db() -> Any:
    from api.core import migrate  # start-up cost: see the module docstring

    settings = _settings()
    migrate.upgrade(settings)
    return settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from api.core import logsetup, migrate  # start-up cost: see the module docstring

    settings = _settings()
    logsetup.configure(settings.log_level, settings.log_json)
    migrate.upgrade(settings)
    print(f"database at revision {migrate.head_revision(settings)}; {settings.where()}")
    return 0


def check_port_free(host: str, port: int) -> None:
    """Refuse early, in words, when something already listens on host:port (uvicorn would log the
    bind error as one more log line and exit, easy to miss)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pass a valid --host") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is already in use (another `golfcheck serve`?); stop that "
                                 f"process or choose another port with --port") from None
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # start-up cost: see the module docstring

    from api.core import logsetup, migrate  # start-up cost: see the module docstring
    from api.http.httpserver import protocol  # start-up cost: see the module docstring
    from api.main import create_app  # start-up cost: see the module docstring

    settings = _settings()
    check_port_free(args.host, args.port)
    log_json = {"json": True, "text": False, "auto": None}.get(args.log_format or "", settings.log_json)
    logsetup.configure(settings.log_level, log_json)
    migrate.upgrade(settings)
    app = create_app(settings, embedded_worker=args.worker)
    print(f"golfcheck serving on http://{args.host}:{args.port}; {settings.where()}", file=sys.stderr, flush=True)
    # No `server: uvicorn` header: it tells a scanner what to try and a client nothing it needs.
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, proxy_headers=True,
                    http=protocol(settings.head_timeout_s), server_header=False)
    except SystemExit as exc:  # uvicorn exits 1 when it cannot start (e.g. the port was taken meanwhile)
        if exc.code:
            print(f"golfcheck: error: the server could not start on {args.host}:{args.port} (see the log line "
                  "above)", file=sys.stderr)
            return 1
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from api.core.auth import create_token, parse_role  # start-up cost: see the module docstring
    from api.core.db import session_scope  # start-up cost: see the module docstring

    settings = _ready_db()
    with session_scope(settings) as session:
        try:
            user, row, token = create_token(session, name=args.name, role=parse_role(args.role))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        print(f"token {row.id} for {user.name} (role {user.role}) in {_db_name(settings)}; it is shown only once:")
        print(token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from api.core.auth import revoke_tokens  # start-up cost: see the module docstring
    from api.core.db import session_scope  # start-up cost: see the module docstring

    settings = _ready_db()
    with session_scope(settings) as session:
        rows = revoke_tokens(session, token_id=args.token_id, token=args.token_value, name=args.user_name,
                             reason=args.reason)
    if not rows:
        raise InputError("no matching active token")
    for r in rows:
        print(f"revoked token {r.id} ({r.prefix}…)")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select  # start-up cost: see the module docstring

    from api.core.db import session_scope  # start-up cost: see the module docstring
    from api.core.models import ApiToken, User  # start-up cost: see the module docstring

    settings = _ready_db()
    with session_scope(settings) as session:
        rows = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)).all()
        out = [{"id": t.id, "prefix": t.prefix, "user": u.name, "role": u.role,
                "created_at": t.created_at.isoformat(), "revoked": t.revoked_at is not None,
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None} for t, u in rows]
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for r in out:
            print(f"{r['id']:>4}  {r['prefix']}…  {r['user']:<20} {r['role']:<9} {'revoked' if r['revoked'] else 'active'}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    settings = _settings()
    server = args.server or settings.server
    if server:
        params: dict[str, Any] = {"limit": min(500, max(1, args.limit)), "runs": "all" if args.all_runs else "best"}
        if args.track:
            params["track"] = args.track
        board = _check(_request(_http(server).get, "/api/v1/leaderboard", params=params))
        source = f"server {server.rstrip('/')}"
    else:
        board = _local_leaderboard(settings, args)
        source = settings.where()
    if args.json:
        print(json.dumps(board, indent=1))
        return 0
    if board.get("demo"):
        print(f"DEMO: {board['demo_note']}")
    print(f"{board['track']}: verified results ({source})")
    if not board["verified"]["entries"]:
        print("  (none yet)")
    for e in board["verified"]["entries"]:
        runs = f", best of {e['runs']} runs" if e.get("runs", 1) > 1 else ""
        family = f"  [{e['family']}]" if e.get("family") else ""
        print(f"  {e['rank']:>3}. {e['val_bpb']:.5f}  {e['name'] or e['submission_id'][:8]}  ({e['author'] or '-'}"
              f"{runs}){family}{_size(e)}")
    print("claimed only (not measured by golfcheck):")
    if not board["claimed_only"]["entries"]:
        print("  (none)")
    for e in board["claimed_only"]["entries"]:
        bpb = f"{e['val_bpb']:.5f}" if e["val_bpb"] is not None else "   -   "
        rank = f"{e['rank']:>3}." if e["rank"] is not None else "   -"
        review = e.get("review") or e["verdict"] or "-"
        review = "historical, not reviewed" if review == "historical" else f"verdict {review}"
        print(f"  {rank} {bpb}  {e['folder']}  ({e['author'] or '-'})  {review}{_size(e)}")
    return 0


def _size(e: dict[str, Any]) -> str:
    n = e.get("size_bytes")
    return f"  {n:,} B" + (f" ({e['size_source']})" if e.get("size_source") not in (None, "measured") else "") \
        if isinstance(n, int) else ""


def _local_leaderboard(settings: Any, args: argparse.Namespace) -> dict[str, Any]:
    from api.core.crud import normalise_track  # start-up cost: see the module docstring
    from api.core.db import session_scope  # start-up cost: see the module docstring
    from api.core.leaderboard import build_leaderboard  # start-up cost: see the module docstring

    if settings.db_path is not None and not settings.db_path.is_file():
        # Reading must not create an empty database somewhere and report "(none yet)".
        raise InputError(f"no golfcheck database at {settings.db_path} ({settings.data_dir_source}); name the "
                         "server to ask with --server URL (or GOLFCHECK_SERVER), or set GOLFCHECK_DATA_DIR to "
                         "the directory `golfcheck serve` printed")
    _ready_db()
    track = normalise_track(args.track, settings.default_track)
    with session_scope(settings) as session:
        return build_leaderboard(session, track=track, limit=max(1, args.limit), offset=0,  # type: ignore[no-any-return]
                                 demo_max_val_tokens=settings.max_val_tokens, runs="all" if args.all_runs else "best")


# -- ingest ------------------------------------------------------------------------------------


def _folder_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _record_folders(root: Path) -> list[Path]:
    """Record folders under RECORDS_ROOT (a `records/` dir with track dirs, a track dir, or one folder)."""
    if not root.is_dir():
        raise InputError(f"{root} is not a directory")

    def is_record(p: Path) -> bool:
        return p.is_dir() and any((p / n).is_file() for n in ("submission.json", "README.md", "train_gpt.py")) \
            or p.is_dir() and any(p.glob("submission*.json")) \
            or p.is_dir() and any(q.is_file() and q.suffix in (".log", ".txt") for q in p.iterdir())
        # ^ a few real record folders hold only train logs; they still belong on the board.

    if is_record(root):
        return [root]
    out: list[Path] = []
    for child in sorted(root.iterdir()):
        if is_record(child):
            out.append(child)
        elif child.is_dir():
            out.extend(sorted(c for c in child.iterdir() if is_record(c)))
    return out


def ingest(settings: Any, root: Path) -> dict[str, Any]:
    """Upsert every record folder under `root`; unchanged folders are skipped (idempotent)."""
    from sqlalchemy import select  # start-up cost: see the module docstring

    from api.core.crud import normalise_track  # start-up cost: see the module docstring
    from api.core.db import session_scope, utcnow  # start-up cost: see the module docstring
    from api.core.models import AuditLog, Record  # start-up cost: see the module docstring

    folders = _record_folders(root)
    summary: dict[str, Any] = {"root": str(root), "folders": len(folders), "added": [], "updated": [], "unchanged": []}
    with session_scope(settings) as session:
        for folder in folders:
            digest = _folder_hash(folder)
            rec = load_record(folder)
            track = normalise_track(getattr(rec, "track", None) or folder.parent.name, settings.default_track)
            row = session.scalar(select(Record).where(Record.track == track, Record.folder == folder.name))
            if row is not None and row.source_sha256 == digest:
                summary["unchanged"].append(folder.name)
                continue
            verdict = check_record(rec, historical=True)  # the history is ingested from copies without code
            vd = verdict.to_dict() if hasattr(verdict, "to_dict") else verdict
            status = getattr(verdict, "status", None) or (vd.get("status") if isinstance(vd, dict) else None)
            data = rec.to_dict() if hasattr(rec, "to_dict") else {}
            values = dict(track=track, folder=folder.name, name=_s(getattr(rec, "name", None)),
                          author=_s(getattr(rec, "author", None)), github_id=_s(data.get("github_id")),
                          # The headline: the final score the record itself reports (from its logs when
                          # submission.json lacks it; gepa.compliance.headline).
                          date=_s(getattr(rec, "date", None)), claimed_val_bpb=_f(getattr(rec, "score", None)),
                          claimed_val_loss=_f(getattr(rec, "val_loss", None)),
                          bytes_total=getattr(rec, "bytes_total", None), verdict=status,
                          data=json.dumps(data, default=str), rule_results=json.dumps(vd, default=str),
                          source_sha256=digest, updated_at=utcnow())
            if row is None:
                session.add(Record(**values))
                summary["added"].append(folder.name)
            else:
                for k, v in values.items():
                    setattr(row, k, v)
                summary["updated"].append(folder.name)
        session.flush()
        _rerank(session, root, settings.default_track)
        if summary["added"] or summary["updated"]:
            session.add(AuditLog(actor="cli", action="records.ingested",
                                 details=json.dumps({k: summary[k] for k in ("root", "added", "updated")})))
    return summary


def _rerank(session: Any, root: Path, default_track: str) -> None:
    """Store the compliance ranking (per service track) on the record rows of the folders under `root`.

    `rank_entries` takes loaded `gepa.compliance.Record`s (not rows) and groups by the record's own
    track string; several spellings map to one service track, so each record is re-labelled with
    the service track first and ranked within it."""
    from sqlalchemy import select  # start-up cost: see the module docstring

    from api.core.crud import normalise_track  # start-up cost: see the module docstring
    from api.core.models import Record  # start-up cost: see the module docstring

    by_track: dict[str, list[Any]] = {}
    for folder in _record_folders(root):
        rec = load_record(folder)
        track = normalise_track(getattr(rec, "track", None) or folder.parent.name, default_track)
        rec = dataclasses.replace(rec, submission=dataclasses.replace(rec.submission, track=track))
        by_track.setdefault(track, []).append(rec)
    for track, recs in by_track.items():
        entries = {e.folder: e for rows in rank_entries(recs).values() for e in rows}
        folded = {e.support: e.folder for e in entries.values() if e.support}
        folders = [r.folder.name for r in recs]
        for r in session.scalars(select(Record).where(Record.track == track, Record.folder.in_(folders))):
            e = entries.get(r.folder)
            r.rank = e.rank if e is not None else None  # a folded record_support folder has no row of its own
            data = json.loads(r.data) if r.data else {}
            data.pop("folded_into", None)
            data.pop("support", None)
            if r.folder in folded:
                data["folded_into"] = folded[r.folder]
            if e is not None and e.support is not None and e.score is not None:
                r.claimed_val_bpb = float(e.score)  # the row shows its support's re-run, as the official board does
                data["support"] = e.support
            r.data = json.dumps(data, default=str)


def _s(v: Any) -> str | None:
    return str(v)[:300] if v not in (None, "") else None


def _f(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = _ready_db()
    summary = ingest(settings, args.records_root)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{summary['folders']} folders: {len(summary['added'])} added, {len(summary['updated'])} updated, "
              f"{len(summary['unchanged'])} unchanged; {settings.where()}")
    return 0


# -- HTTP client -------------------------------------------------------------------------------


def server_url(args: argparse.Namespace, settings: Any) -> str:
    return str(args.server or settings.server or DEFAULT_SERVER).rstrip("/")


def _http(server: str, token: str | None = None) -> Any:
    import httpx  # start-up cost: see the module docstring

    if not server.startswith(("http://", "https://")):
        raise InputError(f"server {server!r} is not an http:// or https:// URL")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=httpx.Timeout(30.0, write=300.0))


def _client(args: argparse.Namespace) -> Any:
    settings = _settings()
    token = args.token or settings.token
    if not token:
        raise InputError("no token: pass --token or set GOLFCHECK_TOKEN (golfcheck token create prints one)")
    return _http(server_url(args, settings), token)


def _check(resp: Any) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code >= 400:
        detail = body.get("detail") or body.get("title") or resp.text[:200]
        msg = f"server answered {resp.status_code} ({body.get('kind', 'error')}): {detail}"
        if resp.status_code >= 500:
            raise RuntimeError(msg)
        raise ServiceError(msg)
    return body  # type: ignore[no-any-return]


def _request(fn: Any, *a: Any, **kw: Any) -> Any:
    import httpx  # start-up cost: see the module docstring

    try:
        return fn(*a, **kw)
    except httpx.TransportError as exc:
        raise ServiceError(f"cannot reach the server: {type(exc).__name__}: {exc}") from None


def classify_paths(paths: list[Path], config: Path | None) -> list[tuple[str, Path]]:
    """(form field, file) pairs for a records folder or a list of files."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p} does not exist")
    if len(files) == 1 and files[0].name.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
        return [("bundle", files[0])]
    fields: list[tuple[str, Path]] = []
    artifacts = [f for f in files if f.suffix in ARTIFACT_SUFFIXES or f.name.startswith("final_model")]
    if len(artifacts) != 1:
        raise InputError(f"need exactly one artifact (*.ptz); found {', '.join(map(str, artifacts)) or 'none'}")
    codes = [f for f in files if f.name == "train_gpt.py"] or [f for f in files if f.suffix == ".py"]
    if len(codes) != 1:
        raise InputError("need the training script train_gpt.py")
    fields += [("artifact", artifacts[0]), ("code", codes[0])]
    if config is not None:
        fields.append(("config", config))
    for f in files:
        if f in (artifacts[0], codes[0]):
            continue
        if f.name == "submission.json":
            fields.append(("submission_json", f))
        elif f.name in CONFIG_NAMES and config is None:
            fields.append(("config", f))
        elif f.suffix in (".log", ".txt") and f.name != "requirements.txt":
            fields.append(("logs", f))
    return fields


class _Progress:
    """A file object that advances a progress bar as httpx reads it."""

    def __init__(self, fh: Any, bar: Any):
        self._fh, self._bar = fh, bar

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._bar.update(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def cmd_submit(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # start-up cost: see the module docstring

    fields = classify_paths(list(map(Path, args.paths)), args.config)
    total = sum(f.stat().st_size for _, f in fields)
    quiet = not sys.stderr.isatty()
    with _client(args) as client:
        handles = []
        try:
            with tqdm(total=total, unit="B", unit_scale=True, desc="upload", disable=quiet, file=sys.stderr) as bar:
                multipart = []
                for name, path in fields:
                    fh = open(path, "rb")
                    handles.append(fh)
                    multipart.append((name, (path.name, _Progress(fh, bar), "application/octet-stream")))
                data = {"track": args.track} if args.track else None
                resp = _request(client.post, "/api/v1/submissions", files=multipart, data=data)
        finally:
            for fh in handles:
                fh.close()
        sub = _check(resp)
        dup = " (identical submission already existed)" if sub.get("duplicate") else ""
        print(f"submission {sub['id']} on {str(client.base_url).rstrip('/')}: {sub['state']}{dup}", file=sys.stderr)
        if args.wait:
            sub = _follow(client, sub["id"], args.interval, quiet)
    return _finish_output(sub, args.json, waited=args.wait)


def _follow(client: Any, sid: str, interval: float, quiet: bool) -> dict[str, Any]:
    from tqdm import tqdm  # start-up cost: see the module docstring

    bar = None
    last_state = None
    try:
        while True:
            sub = _check(_request(client.get, f"/api/v1/submissions/{sid}"))
            if sub["state"] != last_state:
                last_state = sub["state"]
                pos = f" (position {sub['queue_position']} in {sub['queue']})" if sub.get("queue_position") else ""
                print(f"state: {last_state}{pos}", file=sys.stderr)
            prog = sub.get("progress")
            if prog and prog.get("chunks_total"):
                if bar is None:
                    bar = tqdm(total=prog["chunks_total"], unit="chunk", desc="evaluate", disable=quiet, file=sys.stderr)
                if prog["chunks_done"] > bar.n and not quiet:
                    _show_bpb(bar, client, sid)
                bar.update(prog["chunks_done"] - bar.n)
                bar.refresh()
            if sub["state"] in FINAL or (sub["state"] == "scored" and sub["verdict"]["status"] != "pending"):
                if bar is not None:
                    if sub.get("measured_val_bpb") is not None:  # end on the final value, not the last poll's
                        bar.set_postfix(bpb=f"{sub['measured_val_bpb']:.5f}", refresh=False)
                    bar.update(bar.total - bar.n if sub["state"] != "failed" else 0)
                    bar.refresh()
                return sub
            time.sleep(interval)
    finally:
        if bar is not None:
            bar.close()


def _show_bpb(bar: Any, client: Any, sid: str) -> None:
    """Put the newest chunk's running BPB on the bar (best effort: progress is decoration)."""
    try:
        chunks = _check(_request(client.get, f"/api/v1/submissions/{sid}/chunks")).get("chunks") or []
    except (InputError, RuntimeError):
        return
    if chunks and chunks[-1].get("running_bpb") is not None:
        bar.set_postfix(bpb=f"{chunks[-1]['running_bpb']:.5f}", refresh=False)


def _finish_output(sub: dict[str, Any], as_json: bool, waited: bool) -> int:
    if as_json:
        print(json.dumps(sub, indent=1))
    else:
        _print_summary(sub)
        print(sub["id"])
    if not waited:
        return 0
    return 0 if sub["state"] in ("published", "scored") and sub["verdict"]["status"] == "pass" else 1


def retries(sub: dict[str, Any]) -> dict[str, int]:
    """Stages that needed more than one attempt. `attempt` itself counts every stage claim (checks
    is 1, evaluation 2 on a first try), so it says nothing to a contestant on its own."""
    counts: dict[str, int] = {}
    for a in sub.get("attempts") or []:
        counts[a["stage"]] = counts.get(a["stage"], 0) + 1
    return {stage: n for stage, n in counts.items() if n > 1}


def scored_note(tokens_scored: int, total_targets: int | None) -> str:
    """Why `tokens_scored` may exceed the targets: the reference's tail windows score some again."""
    if not total_targets:
        return f"{tokens_scored:,} tokens scored"
    extra = tokens_scored - total_targets
    if extra > 0:
        return (f"{tokens_scored:,} tokens scored for {total_targets:,} targets: the reference's trailing windows "
                f"score the last {extra:,} targets a second time (eval.tail \"reference\")")
    return f"{tokens_scored:,} of {total_targets:,} targets scored"


def _print_summary(sub: dict[str, Any]) -> None:
    out = sys.stdout
    again = retries(sub)
    note = "; ".join(f"{stage} took {n} attempts" for stage, n in again.items())
    print(f"id:        {sub['id']}", file=out)
    print(f"state:     {sub['state']}" + (f" ({note})" if note else ""), file=out)
    if sub.get("queue_position"):
        print(f"queue:     position {sub['queue_position']} in {sub['queue']}", file=out)
    prog = sub.get("progress")
    if prog:
        eta = f", ETA {prog['eta_s']:.0f} s" if prog.get("eta_s") is not None else ""
        print(f"progress:  {prog['chunks_done']}/{prog['chunks_total'] or '?'} chunks{eta}", file=out)
    if sub.get("family"):
        print(f"family:    {sub['family']['name']} ({sub['family']['title']})", file=out)
    sizes = sub["sizes"]
    print(f"size:      {sizes['total_bytes']:,} bytes, headroom {sizes['headroom_bytes']:,} under "
          f"{sizes['cap_bytes']:,}", file=out)
    if sub.get("measured_val_bpb") is not None:
        m = sub.get("measured") or {}
        label = " (DEMO: not verified)" if m.get("demo") else ""
        print(f"measured:  val_bpb {sub['measured_val_bpb']:.6f}{label}", file=out)
    m = sub.get("measured") or {}
    if m.get("tokens_scored"):
        canon = f" of {m['canonical_bytes']:,} canonical" if m.get("canonical_bytes") else ""
        print(f"scored:    {scored_note(m['tokens_scored'], m.get('total_targets'))}", file=out)
        print(f"           {m.get('bytes_scored') or 0:,} bytes{canon}; {m.get('coverage')} validation set, "
              f"sha256 {m.get('val_sha256') or 'unknown'}", file=out)
        if m.get("max_val_tokens"):
            print(f"           validation cut to the first {m['max_val_tokens']:,} tokens by the server "
                  "(a demo setting, not a full score)", file=out)
    ver = sub.get("verification")
    if ver:
        print(f"verified:  {ver['label']} — {ver['note']}", file=out)
    if sub.get("claimed_val_bpb") is not None:
        print(f"claimed:   val_bpb {sub['claimed_val_bpb']:.6f}", file=out)
    v = sub["verdict"]
    print(f"verdict:   {v['status']}" + (f" — {v['reason']}" if v.get("reason") else ""), file=out)
    for r in v.get("rules", []):
        print(f"  {r['status']:<5} {r['rule']}: {r.get('message') or ''}", file=out)


def resolve_id(client: Any, given: str) -> str:
    """A full id, or the unique submission whose id starts with `given` (the short form the queue,
    the pages and `golfcheck submissions` show)."""
    given = given.strip().lower()
    if len(given) == 36:
        return given
    if len(given) < 4 or any(c not in "0123456789abcdef-" for c in given):
        raise InputError(f"{given!r} is not a submission id: give the full id or at least its first 4 characters")
    found: list[str] = []
    offset, page = 0, 500
    while True:
        body = _check(_request(client.get, "/api/v1/submissions", params={"limit": page, "offset": offset}))
        rows = body.get("submissions", [])
        found += [r["id"] for r in rows if r["id"].startswith(given)]
        if len(rows) < page:
            break
        offset += page
    if not found:
        raise ServiceError(f"no submission of yours starts with {given!r} (`golfcheck submissions` lists them)")
    if len(found) > 1:
        raise InputError(f"{given!r} matches {len(found)} submissions ({', '.join(f[:13] for f in found[:5])}…); "
                         "give more characters")
    return found[0]


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        sid = resolve_id(client, args.submission_id)
        sub = _check(_request(client.get, f"/api/v1/submissions/{sid}"))
    if args.json:
        print(json.dumps(sub, indent=1))
    else:
        _print_summary(sub)
    return 0


def cmd_submissions(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        raise InputError("--limit must be between 1 and 500")
    params: dict[str, Any] = {"limit": args.limit}
    if args.state:
        params["state"] = args.state
    with _client(args) as client:
        body = _check(_request(client.get, "/api/v1/submissions", params=params))
    rows = body.get("submissions", [])
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no submissions yet" + (f" in state {args.state}" if args.state else ""))
        return 0
    print(f"{'id':<8}  {'created (UTC)':<16}  {'state':<10}  {'verdict':<12}  {'val_bpb':>8}  {'track':<18}  name")
    for r in rows:
        bpb = f"{r['measured_val_bpb']:.5f}" if r.get("measured_val_bpb") is not None else "-"
        when = (r.get("created_at") or "")[:16].replace("T", " ")
        print(f"{r['id'][:8]:<8}  {when:<16}  {r['state']:<10}  {r.get('verdict') or '-':<12}  {bpb:>8}  "
              f"{r.get('track') or '-':<18}  {r.get('name') or '-'}")
    total = body.get("total", len(rows))
    shown = f"{len(rows)} of {total} shown, --limit shows more" if total > len(rows) else f"{len(rows)} shown"
    print(f"({shown}; `golfcheck status ID` takes the 8-character id)")
    return 0
