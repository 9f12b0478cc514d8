"""Service settings: one frozen object, read once from `GOLFCHECK_*` environment variables.

This is the only module of the service that reads the environment. Every `golfcheck` command,
the API, the Celery workers and the Alembic migrations build their view of the world from
`get_settings()`, so `golfcheck token create` acts on the same database that `golfcheck serve`
uses. Tests build their own `Settings` with `Settings.from_env({...})` instead of patching globals.

The embedded default needs nothing but this machine: SQLite and blobs under `GOLFCHECK_DATA_DIR`
and an in-process worker on an in-memory broker. Where the data lives never depends on the
current directory (`default_data_dir`): the repository's `var/` when golfcheck runs from a source
checkout (what `make run` does), else the platform's user data directory. Setting `GOLFCHECK_DATABASE_URL` and
`GOLFCHECK_BROKER_URL` switches to PostgreSQL and Redis (the production stack).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from gepa.compliance.policy import MAX_ARTIFACT_DECOMPRESSED_BYTES

MB = 1_000_000
DEFAULT_SERVER = "http://127.0.0.1:8000"

# The table in docs/service.md and docker-compose.yml's environment mirror these names; a test
# checks that every variable the compose file sets is one the code reads.
ENV_VARS = (
    "GOLFCHECK_DATA_DIR",
    "GOLFCHECK_DATABASE_URL",
    "GOLFCHECK_BROKER_URL",
    "GOLFCHECK_BROKER_PREFIX",
    "GOLFCHECK_MAX_FILE_BYTES",
    "GOLFCHECK_MAX_REQUEST_BYTES",
    "GOLFCHECK_VAL_GLOB",
    "GOLFCHECK_TOKENIZER",
    "GOLFCHECK_FAMILY_DATA",
    "GOLFCHECK_MAX_VAL_TOKENS",
    "GOLFCHECK_DEVICE",
    "GOLFCHECK_CAP_BYTES",
    "GOLFCHECK_EVAL_TIME_LIMIT_S",
    "GOLFCHECK_CHECK_TIME_LIMIT_S",
    "GOLFCHECK_HEARTBEAT_S",
    "GOLFCHECK_STALE_AFTER_S",
    "GOLFCHECK_REQUEUE_AFTER_S",
    "GOLFCHECK_REAPER_INTERVAL_S",
    "GOLFCHECK_MAX_ATTEMPTS",
    "GOLFCHECK_AUTO_PUBLISH",
    "GOLFCHECK_CANONICAL_VAL_SHA256",
    "GOLFCHECK_DEFAULT_TRACK",
    "GOLFCHECK_LOG_LEVEL",
    "GOLFCHECK_LOG_JSON",
    "GOLFCHECK_EMBEDDED_WORKER",
    "GOLFCHECK_EVAL_CHUNK_DELAY_S",
    "GOLFCHECK_SERVER",
    "GOLFCHECK_TOKEN",
    "GOLFCHECK_DAILY_QUOTA",
    "GOLFCHECK_MAX_ACTIVE_PER_SUBMITTER",
    "GOLFCHECK_UPLOAD_RATE_PER_MIN",
    "GOLFCHECK_MAX_DECOMPRESSED_BYTES",
    "GOLFCHECK_ORPHAN_AFTER_S",
    "GOLFCHECK_LEADERBOARD_CACHE_S",
    "GOLFCHECK_TRACKS",
    "GOLFCHECK_UPLOAD_DEADLINE_S",
    "GOLFCHECK_UPLOAD_MIN_RATE_BPS",
    "GOLFCHECK_UPLOAD_RATE_GRACE_S",
    "GOLFCHECK_HEAD_TIMEOUT_S",
)


REPO_ROOT = Path(__file__).resolve().parents[2]


def is_source_checkout() -> bool:
    """True when the package runs from the repository (editable install), not from site-packages."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "api" / "core" / "settings.py").is_file()


def user_data_dir(env: Mapping[str, str]) -> Path:
    """The platform's per-user data directory for golfcheck (XDG on Linux, as platformdirs would)."""
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_DATA_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"  # XDG: relative = unset
    return base / "golfcheck"


def default_data_dir(env: Mapping[str, str]) -> tuple[Path, str]:
    """(directory, why) for the data when GOLFCHECK_DATA_DIR is unset; absolute, never cwd-relative."""
    if is_source_checkout():
        return REPO_ROOT / "var", "default: the source checkout's var/"
    return user_data_dir(env), "default: the user data directory"


def _data_dir(env: Mapping[str, str]) -> tuple[Path, str]:
    raw = env.get("GOLFCHECK_DATA_DIR", "").strip()
    if raw:
        # Resolved once, here: a later chdir (or another shell) must not move the data.
        return Path(raw).expanduser().resolve(), "GOLFCHECK_DATA_DIR"
    return default_data_dir(env)


class SettingsError(ValueError):
    """A GOLFCHECK_* variable has a value the service cannot use (raised at start-up, not later)."""


def _sha256(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name, "").strip().lower()
    if raw and (len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw)):
        raise SettingsError(f"{name} must be a sha256 hex digest (64 hex digits), got {raw[:80]!r}; "
                            "`golfcheck fingerprint GLOB` prints the one of a set of validation shards")
    return raw


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also rejects NaN
        raise SettingsError(f"{name} must be at least {minimum}, got {raw}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _normalise_db_url(url: str) -> str:
    # Heroku-style and bare postgresql:// URLs would pick psycopg2, which is not installed.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _redact(url: str) -> str:
    """A database URL without its password."""
    head, sep, tail = url.partition("://")
    if "@" in tail:
        cred, _, host = tail.rpartition("@")
        user = cred.split(":", 1)[0]
        return f"{head}{sep}{user}:***@{host}" if ":" in cred else f"{head}{sep}{cred}@{host}"
    return url


FAMILY_DATA_KEYS = ("val_glob", "tokenizer", "sidecar_glob", "val_sha256")


@dataclass(frozen=True)
class FamilyData:
    """The validation data one model family is scored on (its shards use that family's tokenizer).

    val_glob: the family's validation shards; tokenizer: its SentencePiece model (empty: the one
    the family bundles); sidecar_glob: a per-token byte sidecar shipped with the shards, kept
    only for comparison (CaseOps); val_sha256: the fingerprint (`gepa.shards.fingerprint`) of the
    family's full canonical validation set, empty when none is configured."""

    val_glob: str
    tokenizer: str = ""
    sidecar_glob: str = ""
    val_sha256: str = ""


def _is_family_name(name: str) -> bool:
    """A package name under gepa/families: lower-case letter first, then letters, digits, _."""
    return (0 < len(name) <= 40 and "a" <= name[0] <= "z"
            and all("a" <= c <= "z" or "0" <= c <= "9" or c == "_" for c in name))


def _family_data(value: str) -> tuple[tuple[str, FamilyData], ...]:
    """GOLFCHECK_FAMILY_DATA: a JSON object (or the path of a JSON file) mapping a family name to
    {"val_glob": ..., "tokenizer": ..., "sidecar_glob": ..., "val_sha256": ...}."""
    name = "GOLFCHECK_FAMILY_DATA"
    raw = value.strip()
    if not raw:
        return ()
    if not raw.startswith("{"):
        try:
            raw = Path(raw).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{name} is neither a JSON object nor a readable file: {exc.strerror}") from None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must be a JSON object mapping family names to their validation data")
    out: list[tuple[str, FamilyData]] = []
    for family, entry in sorted(value.items()):
        if not _is_family_name(family):
            raise SettingsError(f"{name}: {family[:40]!r} is not a family name (lower-case letters, digits, _)")
        if not isinstance(entry, dict):
            raise SettingsError(f"{name}: the entry for {family} must be an object with keys {', '.join(FAMILY_DATA_KEYS)}")
        unknown = sorted(set(entry) - set(FAMILY_DATA_KEYS))
        if unknown:
            raise SettingsError(f"{name}: unknown key(s) for {family}: {', '.join(unknown)}; "
                                f"known: {', '.join(FAMILY_DATA_KEYS)}")
        if not all(isinstance(v, str) for v in entry.values()):
            raise SettingsError(f"{name}: every value for {family} must be a string")
        if not entry.get("val_glob", "").strip():
            raise SettingsError(f"{name}: {family} needs a val_glob (the family's validation shards)")
        sha = entry.get("val_sha256", "").strip().lower()
        if sha and not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise SettingsError(f"{name}: val_sha256 for {family} must be 64 hex digits (golfcheck's shard fingerprint)")
        out.append((family, FamilyData(val_glob=entry["val_glob"].strip(), tokenizer=entry.get("tokenizer", "").strip(),
                                       sidecar_glob=entry.get("sidecar_glob", "").strip(), val_sha256=sha)))
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = dataclasses.field(default_factory=lambda: default_data_dir(os.environ)[0])
    data_dir_source: str = "default"   # where data_dir came from, for the messages that print it
    database_url: str = ""             # empty: sqlite:///<data_dir>/golfcheck.db
    broker_prefix: str = ""            # Redis key prefix: several deployments (or test runs) on one Redis
    broker_url: str = "memory://localhost/"  # memory:// = embedded in-process worker, no Redis
    max_file_bytes: int = 32 * MB
    max_request_bytes: int = 64 * MB
    val_glob: str = ""                 # empty: the bundled sample validation shard
    tokenizer: str = ""                # empty: the bundled tokenizer
    # Per-family validation data (GOLFCHECK_FAMILY_DATA); a family not listed here is scored on
    # val_glob/tokenizer above only if it shares the default family's tokenizer (worker/pipeline.py).
    family_data: tuple[tuple[str, FamilyData], ...] = ()
    max_val_tokens: int | None = None  # truncate validation (demos, tests); None = all of it
    device: str = "auto"               # auto: cuda when available, else cpu
    cap_bytes: int = 16_000_000        # the challenge's artifact cap (code + compressed model)
    eval_time_limit_s: int = 3600      # hard limit of one evaluation task
    check_time_limit_s: int = 300
    heartbeat_s: float = 10.0          # how often a running stage touches its row
    stale_after_s: float = 120.0       # a running stage whose heartbeat is older is presumed dead
    requeue_after_s: float = 300.0     # a queued row this old without a worker is enqueued again
    reaper_interval_s: float = 30.0
    max_attempts: int = 3              # platform-fault attempts per stage before `failed`
    auto_publish: bool = True          # a passing verdict goes straight to the leaderboard
    # sha256 of the canonical validation shards (gepa.shards.fingerprint): only a result computed on
    # exactly these, in full, can be verified. Empty: nothing this server measures is verified.
    canonical_val_sha256: str = ""
    default_track: str = "track_10min_16mb"
    log_level: str = "INFO"
    log_json: bool | None = None       # None: JSON lines when stderr is not a terminal, text on a terminal
    embedded_worker: bool | None = None  # None: on exactly when the broker is memory://
    eval_chunk_delay_s: float = 0.0    # pause after each chunk: demos and fault-injection tests only
    # Abuse limits (SECURITY.md). The daily quota counts submissions created in the current UTC
    # day that did not fail through the platform's fault; a user's `daily_quota` column overrides it.
    daily_quota: int = 20
    max_active_per_submitter: int = 3  # received/queued/checking/evaluating at once
    upload_rate_per_min: int = 10      # upload attempts per user per minute (per API process)
    # An artifact may not inflate past this in the checks (the same default as `golfcheck check`).
    max_decompressed_bytes: int = MAX_ARTIFACT_DECOMPRESSED_BYTES
    orphan_after_s: float = 3600.0     # temp uploads and unreferenced blob files older than this are swept
    leaderboard_cache_s: float = 2.0   # the public board may be this stale per API process (0: no cache)
    # The leaderboard tracks a submission may name (aliases such as "record" are normalised first).
    tracks: tuple[str, ...] = ("track_10min_16mb", "track_non_record_16mb")
    # Slow clients (docs/service.md, "Behind a proxy"): an upload body must arrive within the
    # deadline and, after the grace period, at the minimum average rate; a request head within
    # head_timeout_s of its first byte.
    upload_deadline_s: float = 1800.0
    upload_min_rate_bps: int = 32_000
    upload_rate_grace_s: float = 30.0
    head_timeout_s: float = 30.0
    # Client side (`golfcheck submit` / `status` / `submissions` / `leaderboard`): defaults for
    # --server and --token. Empty server: `leaderboard` reads the local database, the others use
    # DEFAULT_SERVER.
    server: str = ""
    token: str = dataclasses.field(default="", repr=False)

    # -- derived ---------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'golfcheck.db').resolve()}"

    @property
    def demo(self) -> bool:
        """The quick-demo setting: validation is cut, so nothing this server measures is verified."""
        return self.max_val_tokens is not None

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def data_for(self, family: str) -> FamilyData | None:
        """The validation data configured for `family`, or None when none is."""
        return dict(self.family_data).get(family)

    @property
    def db_path(self) -> Path | None:
        """The SQLite file of the embedded default (None for PostgreSQL)."""
        return (self.data_dir / "golfcheck.db").resolve() if not self.database_url and self.is_sqlite else None

    def where(self) -> str:
        """One line saying where the data lives, for the commands that touch it."""
        db = str(self.db_path) if self.db_path else _redact(self.db_url)
        return f"data in {self.data_dir} ({self.data_dir_source}), database {db}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory://")

    @property
    def run_embedded_worker(self) -> bool:
        if self.embedded_worker is None:
            return self.is_embedded_broker
        return self.embedded_worker

    @property
    def visibility_timeout_s(self) -> int:
        # Redis redelivers an unacknowledged task after this long; it must exceed the hard time
        # limit, or a task that is still running would be handed to a second worker.
        return int(max(self.eval_time_limit_s, self.check_time_limit_s) * 1.5) + 60

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        data_dir, data_dir_source = _data_dir(env)
        max_val = _int(env, "GOLFCHECK_MAX_VAL_TOKENS", 0, minimum=0)
        s = cls(
            data_dir=data_dir,
            data_dir_source=data_dir_source,
            database_url=_normalise_db_url(env.get("GOLFCHECK_DATABASE_URL", "").strip()),
            broker_url=env.get("GOLFCHECK_BROKER_URL", "").strip() or d.broker_url,
            broker_prefix=env.get("GOLFCHECK_BROKER_PREFIX", "").strip(),
            max_file_bytes=_int(env, "GOLFCHECK_MAX_FILE_BYTES", d.max_file_bytes, minimum=1),
            max_request_bytes=_int(env, "GOLFCHECK_MAX_REQUEST_BYTES", d.max_request_bytes, minimum=1),
            val_glob=env.get("GOLFCHECK_VAL_GLOB", "").strip(),
            tokenizer=env.get("GOLFCHECK_TOKENIZER", "").strip(),
            family_data=_family_data(env.get("GOLFCHECK_FAMILY_DATA", "")),
            max_val_tokens=max_val or None,
            device=env.get("GOLFCHECK_DEVICE", "").strip() or d.device,
            cap_bytes=_int(env, "GOLFCHECK_CAP_BYTES", d.cap_bytes, minimum=1),
            eval_time_limit_s=_int(env, "GOLFCHECK_EVAL_TIME_LIMIT_S", d.eval_time_limit_s, minimum=10),
            check_time_limit_s=_int(env, "GOLFCHECK_CHECK_TIME_LIMIT_S", d.check_time_limit_s, minimum=10),
            heartbeat_s=_float(env, "GOLFCHECK_HEARTBEAT_S", d.heartbeat_s, minimum=0.05),
            stale_after_s=_float(env, "GOLFCHECK_STALE_AFTER_S", d.stale_after_s, minimum=0.1),
            requeue_after_s=_float(env, "GOLFCHECK_REQUEUE_AFTER_S", d.requeue_after_s, minimum=0.1),
            reaper_interval_s=_float(env, "GOLFCHECK_REAPER_INTERVAL_S", d.reaper_interval_s, minimum=0.1),
            max_attempts=_int(env, "GOLFCHECK_MAX_ATTEMPTS", d.max_attempts, minimum=1),
            auto_publish=bool(_bool(env, "GOLFCHECK_AUTO_PUBLISH", d.auto_publish)),
            canonical_val_sha256=_sha256(env, "GOLFCHECK_CANONICAL_VAL_SHA256"),
            default_track=env.get("GOLFCHECK_DEFAULT_TRACK", "").strip() or d.default_track,
            log_level=(env.get("GOLFCHECK_LOG_LEVEL", "").strip() or d.log_level).upper(),
            log_json=_bool(env, "GOLFCHECK_LOG_JSON", d.log_json),
            embedded_worker=_bool(env, "GOLFCHECK_EMBEDDED_WORKER", None),
            eval_chunk_delay_s=_float(env, "GOLFCHECK_EVAL_CHUNK_DELAY_S", 0.0),
            daily_quota=_int(env, "GOLFCHECK_DAILY_QUOTA", d.daily_quota, minimum=0),
            max_active_per_submitter=_int(env, "GOLFCHECK_MAX_ACTIVE_PER_SUBMITTER", d.max_active_per_submitter,
                                          minimum=1),
            upload_rate_per_min=_int(env, "GOLFCHECK_UPLOAD_RATE_PER_MIN", d.upload_rate_per_min, minimum=1),
            max_decompressed_bytes=_int(env, "GOLFCHECK_MAX_DECOMPRESSED_BYTES", d.max_decompressed_bytes,
                                        minimum=1 << 20),
            orphan_after_s=_float(env, "GOLFCHECK_ORPHAN_AFTER_S", d.orphan_after_s, minimum=1.0),
            leaderboard_cache_s=_float(env, "GOLFCHECK_LEADERBOARD_CACHE_S", d.leaderboard_cache_s),
            tracks=tuple(t.strip() for t in env.get("GOLFCHECK_TRACKS", "").split(",") if t.strip()) or d.tracks,
            upload_deadline_s=_float(env, "GOLFCHECK_UPLOAD_DEADLINE_S", d.upload_deadline_s, minimum=1.0),
            upload_min_rate_bps=_int(env, "GOLFCHECK_UPLOAD_MIN_RATE_BPS", d.upload_min_rate_bps, minimum=0),
            upload_rate_grace_s=_float(env, "GOLFCHECK_UPLOAD_RATE_GRACE_S", d.upload_rate_grace_s, minimum=0.0),
            head_timeout_s=_float(env, "GOLFCHECK_HEAD_TIMEOUT_S", d.head_timeout_s, minimum=1.0),
            server=env.get("GOLFCHECK_SERVER", "").strip() or d.server,
            token=env.get("GOLFCHECK_TOKEN", "").strip(),
        )
        if s.stale_after_s <= s.heartbeat_s:
            raise SettingsError(
                f"GOLFCHECK_STALE_AFTER_S ({s.stale_after_s}) must exceed GOLFCHECK_HEARTBEAT_S ({s.heartbeat_s}), "
                "or live work would be presumed dead"
            )
        if s.max_file_bytes > s.max_request_bytes:
            raise SettingsError("GOLFCHECK_MAX_FILE_BYTES must not exceed GOLFCHECK_MAX_REQUEST_BYTES")
        if s.database_url and not s.database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError("GOLFCHECK_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return s


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
