"""Content-addressed blob storage on the local file system.

A blob lives at `<blob_dir>/ab/cd/<sha256>`. Writers stream into a temporary file in the same
directory tree while hashing, refuse to grow past a byte limit, and only then rename the file to
its content address (atomic on POSIX), so a reader never sees a half-written blob and two uploads
of the same bytes share one file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

COPY_CHUNK = 1 << 20


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

    def finish(self) -> StoredBlob:
        if self._file is None:
            raise RuntimeError("blob writer is closed")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        sha = self._hash.hexdigest()
        rel = self._store.rel_path(sha)
        final = self._store.root / rel
        if final.exists():
            self._tmp.unlink(missing_ok=True)
            # Fresh mtime: the orphan sweep must not take a file this upload is about to reference.
            os.utime(final)
            return StoredBlob(sha, self.size, rel, created=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        return StoredBlob(sha, self.size, rel, created=True)

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

    def remove(self, sha256: str) -> None:
        """Delete a blob file (used to undo files created by a request whose transaction failed)."""
        self.path(sha256).unlink(missing_ok=True)
