"""Helpers of the hardening suite: servers on a database of their own, SQL access, the invariants
every fault and hostile-input test ends with (no orphan blobs, nothing outside the data directory),
and builders for hostile inputs. Everything hostile is generated here by code; nothing binary is
checked in."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import zstandard
from tests.support.service import Proc, Server, TcpProxy, _create_db, _drop_db, base_env, start_server
from api.core.db import dispose_engines
from tests.support.service import free_port
import redis as redis_lib
from tests.support.service import wait_until
import threading

PROBLEM = "application/problem+json"


@dataclass
class HServer:
    """A `golfcheck serve` process with its own PostgreSQL database and data directory."""

    server: Server
    db_name: str
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pg_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.db_name}"

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{self.db_name}", autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []


def start_hserver(tmp: Path, *serve_args: str, **env_extra: str) -> HServer:
    db = _create_db()
    env = base_env(tmp, GOLFCHECK_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", **env_extra)
    try:
        server = start_server(env, tmp, *serve_args)
    except BaseException:
        _drop_db(db)
        raise
    return HServer(server, db, tmp)


def stop_hserver(h: HServer) -> None:
    h.server.proc.stop()
    dispose_engines()
    _drop_db(h.db_name)


# -- invariants ------------------------------------------------------------------------------------


def blob_files(data_dir: Path) -> set[str]:
    root = data_dir / "blobs"
    return {p.name for p in root.glob("??/??/*") if p.is_file()} if root.is_dir() else set()


def temp_files(data_dir: Path) -> list[str]:
    tmp = data_dir / "blobs" / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def assert_no_orphans(sql: Any, data_dir: Path) -> None:
    """Every stored file has a `blobs` row, every row its file, every row is used by a submission,
    and no upload left a temp file behind."""
    on_disk = blob_files(data_dir)
    rows = {r[0] for r in sql("SELECT sha256 FROM blobs")}
    used = {r[0] for r in sql("SELECT sha256 FROM submission_files")}
    assert on_disk == rows, f"files without rows: {sorted(on_disk - rows)[:5]}, rows without files: {sorted(rows - on_disk)[:5]}"
    assert rows == used, f"blobs no submission uses: {sorted(rows - used)[:5]}"
    assert temp_files(data_dir) == []


def peak_rss_bytes(pid: int) -> int:
    """The process's high-water resident set (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def server_pid(proc: Proc) -> int:
    return proc.pid


# -- hostile artifacts -------------------------------------------------------------------------------


def reduce_pickle(module: str, name: str, arg: str) -> bytes:
    """Protocol-2 pickle calling module.name(arg) when loaded: GLOBAL, a string, TUPLE1, REDUCE."""
    a = arg.encode()
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\nq\x00X" + len(a).to_bytes(4, "little")
            + a + b"\x85q\x01Rq\x02.")


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def short_storage(artifact: bytes) -> bytes:
    """The artifact with its largest tensor's storage cut in half: the pickle still declares the
    full shape, the data does not have it."""
    raw = zstandard.ZstdDecompressor().decompress(artifact, max_output_size=1 << 28)
    zf = zipfile.ZipFile(io.BytesIO(raw))
    big = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in zf.infolist():
            d = zf.read(info)
            dst.writestr(info.filename, d[: len(d) // 2] if info.filename == big.filename else d)
    return zstd(out.getvalue())


# -- hostile archives ---------------------------------------------------------------------------------


def tar_bytes(entries: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                tf.addfile(info, io.BytesIO(e[1]))
    return buf.getvalue()


def tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info


def zip_bytes(entries: list[tuple[str, bytes]], *, symlink: tuple[str, str] | None = None,
              compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink[0])
            info.create_system = 3
            info.external_attr = (0o120777 << 16)  # S_IFLNK
            zf.writestr(info, symlink[1])
    return out.getvalue()


def zip_bomb(total: int) -> bytes:
    """One member of `total` zeros, deflated (about 1000:1), streamed so memory stays small."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("rec/final_model.int6.ptz", "w", force_zip64=True) as fh:
            piece = bytes(8 << 20)
            for _ in range(total // len(piece)):
                fh.write(piece)
    return out.getvalue()


def gzip_tar_bomb(total: int, member: str) -> bytes:
    """A .tar.gz with one member of `total` zeros, streamed into gzip (never held in memory)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
        info = tarfile.TarInfo(member)
        info.size = total
        gz.write(info.tobuf(format=tarfile.GNU_FORMAT))
        piece = bytes(8 << 20)
        left = total
        while left:
            n = min(left, len(piece))
            gz.write(piece[:n])
            left -= n
        gz.write(bytes(-total % 512) + bytes(1024))
    return out.getvalue()


# -- multipart -------------------------------------------------------------------------------------------


def files_for(tiny: dict[str, Any], *, artifact: bytes | None = None, code: bytes | None = None,
              config: bytes | None = None, names: dict[str, str] | None = None,
              submission_json: bytes | None = None) -> list[tuple[str, Any]]:
    names = names or {}
    files: list[tuple[str, Any]] = [
        ("artifact", (names.get("artifact", "final_model.int6.ptz"),
                      tiny["artifact"].read_bytes() if artifact is None else artifact, "application/octet-stream")),
        ("code", (names.get("code", "train_gpt.py"), tiny["code"].read_bytes() if code is None else code,
                  "text/x-python")),
        ("config", ("eval.json", tiny["config"].read_bytes() if config is None else config, "application/json")),
        ("logs", ("train_seed0.log", tiny["log"].read_bytes(), "text/plain")),
    ]
    # The tiny record's true claim by default: with it, an intact upload can be verified.
    meta = json.dumps(tiny["claim"]).encode() if submission_json is None else submission_json
    files.append(("submission_json", ("submission.json", meta, "application/json")))
    return files


def unique_code(tiny: dict[str, Any], tag: str) -> bytes:
    """The tiny training script with a comment that makes the upload distinct (no dedupe)."""
    return tiny["code"].read_bytes() + f"\n# {tag} {os.urandom(6).hex()}\n".encode()


def deep_json(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def nested_objects(depth: int) -> bytes:
    return json.dumps({"model": {}}).replace("{}", "{" + '"a":{' * depth + "}" * depth + "}").encode()


def iter_chunks(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


# -- fault injection ---------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own on a free loopback port (never the machine's shared one),
    without persistence, so a restart loses every message it held: the worst case for the queue."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.log_dir = log_dir
        self.proc: Proc | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = Proc("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                   "--appendonly", "no", "--dir", str(self.log_dir)], dict(os.environ), self.log_dir)
        wait_until(lambda: redis_lib.Redis(port=self.port, socket_timeout=1).ping(), 30, "redis to start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.stop(timeout=0.1)


class WriteBackCutter(TcpProxy):
    """A TCP proxy in front of PostgreSQL that cuts the database off at a chosen moment of a write:
    when the client sends a statement containing `trigger`.

    mode "before": that statement never reaches the server (the transaction is lost);
    mode "after-commit": the statement and the transaction's COMMIT reach the server, but the
    server's answer to the COMMIT never reaches the client (it committed; the client cannot know).
    Then every connection is dropped and new ones are refused until `restore()`."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self.fired = threading.Event()
        self.trigger: bytes | None = None
        self.mode = "before"
        super().__init__(target)

    def arm(self, trigger: bytes, mode: str) -> None:
        self.fired.clear()
        self.trigger, self.mode = trigger, mode

    def _new_conn(self) -> dict[str, Any]:
        return {"armed_commit": False, "mute_replies": False}

    def _forward(self, data: bytes, dst: Any, conn: dict[str, Any], to_server: bool) -> bool:
        if to_server and self.trigger and not self.fired.is_set():
            if self.trigger in data:
                if self.mode == "before":
                    self.fired.set()
                    self.cut()
                    return False
                conn["armed_commit"] = True
            elif conn["armed_commit"] and b"COMMIT" in data:
                conn["mute_replies"] = True
                dst.sendall(data)
                self.fired.set()
                threading.Timer(0.5, self.cut).start()
                return True
        if not to_server and conn["mute_replies"]:
            return True
        dst.sendall(data)
        return True

    def restore(self) -> None:
        self.trigger = None
        super().restore()
