"""Content-addressed blob storage on the local file system.

A blob lives at `<blob_dir>/ab/cd/<sha256>`. Writers stream into a temporary file in the same
directory tree while hashing, refuse to grow past a byte limit, and only then rename the file to
its content address (atomic on POSIX), so a reader never sees a half-written blob and two uploads
of the same bytes share one file.

Blob lifetime under concurrency (two uploads of the same bytes may be in flight while a third
aborts): an upload keeps its own copy of every part (its "hold", a hard link of the stored file or
its own temp file when the content already existed) until its submission row is committed or the
upload is abandoned. Files are only ever removed under the store's exclusive lock and only when no
committed row references them (`remove_unreferenced`); a commit holds the shared lock from checking
its files (restoring any that were removed meanwhile from its holds, `ensure`) until the commit.
So a blob a committed row references is never removed, and an abort removes only what nobody uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

if sys.platform != "win32":
    import fcntl
else:  # pragma: no cover - no flock on Windows: one process per data directory there
    fcntl = None

LOCK_FILE = ".lock"
_local_lock = threading.Lock()


class BlobTooLarge(Exception):
    """The stream grew past the writer's byte limit."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    rel_path: str
    created: bool  # False when the content was already stored
    # This upload's own copy, kept until its row commits (see the module docstring); None once released.
    hold: Path | None = field(default=None, compare=False)


class BlobWriter:
    """Streams one blob: `write()` chunks, then `finish()` (or `abort()`)."""

    def __init__(self, store: "BlobStore", max_bytes: int):
        self._store = store
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        tmp_dir = store.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._tmp = Path(name)

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise RuntimeError("blob writer is closed")
        self.size += len(data)
        if self.size > self.max_bytes:
            self.abort()
            raise BlobTooLarge(self.max_bytes)
        self._hash.update(data)
        self._file.write(data)

    def finish(self, *, hold: bool = False) -> StoredBlob:
        """Store the content at its address. With `hold`, the temp file stays as this upload's own
        copy (`StoredBlob.hold`) until `BlobStore.release`; otherwise it is dropped now."""
        if self._file is None:
            raise RuntimeError("blob writer is closed")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        sha = self._hash.hexdigest()
        rel = self._store.rel_path(sha)
        created = self._store.place(self._tmp, self._store.root / rel)
        if not hold:
            self._tmp.unlink(missing_ok=True)
            return StoredBlob(sha, self.size, rel, created=created)
        return StoredBlob(sha, self.size, rel, created=created, hold=self._tmp)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def rel_path(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / self.rel_path(sha256)

    def writer(self, max_bytes: int) -> BlobWriter:
        return BlobWriter(self, max_bytes)

    def put_bytes(self, data: bytes, max_bytes: int | None = None) -> StoredBlob:
        w = self.writer(max_bytes if max_bytes is not None else len(data))
        w.write(data)
        return w.finish()

    def read_bytes(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def temp_files(self) -> list[Path]:
        tmp = self.root / "tmp"
        return sorted(tmp.glob("upload-*")) if tmp.is_dir() else []

    def blob_files(self) -> list[Path]:
        """Every content-addressed file (ab/cd/<sha256>), not the temp directory."""
        if not self.root.is_dir():
            return []
        return [p for p in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*") if p.is_file() and len(p.name) == 64]

    def place(self, src: Path, final: Path) -> bool:
        """Make `final` hold the content of `src` (a complete temp file) without touching `src`.
        Returns True when this call created it, False when it already existed."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, final)  # atomic, and fails instead of replacing what is there
            return True
        except FileExistsError:
            # Fresh mtime: the orphan sweep must not take a file this upload is about to reference.
            os.utime(final)
            return False
        except OSError:  # a file system without hard links: copy, then rename into place
            if final.exists():
                os.utime(final)
                return False
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="upload-")
            os.close(fd)
            shutil.copyfile(src, tmp)
            os.replace(tmp, final)
            return True

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """The store's lock: shared while a commit makes rows reference files, exclusive while files
        are removed. A flock on `<root>/.lock`, so it holds across the API's threads, the worker
        and CLI processes on this host (each acquisition opens its own file description)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            with _local_lock:
                yield
            return
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the description releases the lock

    def local_path(self, blob: StoredBlob) -> Path:
        """Where the request that stored `blob` reads it back: its own hold while it has one (the
        shared file may be removed by another request's abort until this one commits)."""
        return blob.hold if blob.hold is not None else self.path(blob.sha256)

    def ensure(self, blob: StoredBlob) -> bool:
        """Call under the shared lock before committing a row that references `blob`: True when its
        file is in place (put back from this upload's hold if someone removed it meanwhile)."""
        final = self.root / blob.rel_path
        if final.is_file():
            return True
        if blob.hold is None or not blob.hold.is_file():
            return False
        self.place(blob.hold, final)
        return True

    @staticmethod
    def release(blobs: Iterable[StoredBlob]) -> None:
        """Drop an upload's holds (after its row committed, or when it is abandoned)."""
        for b in blobs:
            if b.hold is not None:
                b.hold.unlink(missing_ok=True)

    def remove_unreferenced(self, shas: Iterable[str], referenced: Callable[[list[str]], set[str]]) -> list[str]:
        """Delete the blob files among `shas` that no committed row references. `referenced(shas)`
        must read committed rows in a transaction that starts after the lock is taken."""
        wanted = sorted(set(shas))
        if not wanted:
            return []
        removed = []
        with self.lock(exclusive=True):
            keep = referenced(wanted)
            for sha in wanted:
                if sha not in keep:
                    self.path(sha).unlink(missing_ok=True)
                    removed.append(sha)
        return removed
