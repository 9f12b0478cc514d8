"""Streaming multipart upload: every file goes to blob storage while it is hashed, never to memory.

`UploadParser.feed(chunk)` is called with the request body as it arrives. Limits are enforced as
bytes flow: a file past `max_file_bytes` or a body past `max_request_bytes` stops the upload with
413 at that point (and a declared Content-Length over the limit is refused before reading at all,
in the route). Text fields are small and kept in memory with their own cap.

Fields: artifact (file), code (file), config (file or text, JSON), submission_json (file or
text, JSON), logs (zero or more files), track (text); or bundle (one .tar.gz / .tgz / .tar / .zip
of a records folder) instead of artifact and code. Unknown fields are refused, so a typo such as
`artefact` gets a clear 422 instead of a confusing "artifact missing".

`browser_form=True` (the contestant page's HTML form, api.http.pages.contestant) reads what a browser
sends for the same fields: a file input left empty (a part with an empty file name and no bytes)
and an empty text field count as absent, as if the field were not sent; and `folder` parts (one
per file of an `<input webkitdirectory>`, named by their path in the chosen folder) are one more
way to send a records folder, taken apart exactly like a bundle's members. Everything else is the
same code, so the page and the API give the same answer, with the same message, for the same input.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import math
import posixpath
import stat
import tarfile
import zipfile
import zlib
from typing import Any, BinaryIO, Callable

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from api.http.problems import Problem
from api.core.intake import ParsedUpload, UploadedFile
from api.core.storage import BlobStore, BlobTooLarge, BlobWriter, StoredBlob

FILE_FIELDS = ("artifact", "code", "bundle", "logs")
JSON_FIELDS = ("config", "submission_json")
TEXT_FIELDS = ("track",)
ALLOWED_FIELDS = FILE_FIELDS + JSON_FIELDS + TEXT_FIELDS
FOLDER_FIELD = "folder"           # browser forms only: the files of a chosen folder
REPEATABLE = ("logs",)
MAX_TEXT_FIELD = 1_000_000      # config / submission.json are a few kB
MAX_BUNDLE_MEMBERS = 500
# Parts of one form, like bundle members: every part costs parsing time and a row. Only `logs`
# repeats; a records folder has a handful of logs (one per seed), 100 is generous.
MAX_PARTS_PER_FIELD = {"logs": 100}
MAX_PARTS = MAX_BUNDLE_MEMBERS
# The longest boundary accepted (RFC 2046 allows 70 characters; the parser's own cap is 256).
MAX_BOUNDARY = 200
MAX_JSON_DEPTH = 32             # configs are three levels deep; deeper is an attack, not a config
MAX_FILENAME = 255
# Archive members that are not plain files or folders: refused by name, never skipped silently.
_ZIP_TYPE_OK = (0, stat.S_IFREG, stat.S_IFDIR)
CONFIG_NAMES = ("eval.json", "eval_config.json", "config.json", "golfcheck.json")
ARTIFACT_SUFFIXES = (".ptz", ".pt", ".bin.zst")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf, which no config or claim can mean
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (a recursive walk is what a deep document is built to break)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def parse_json_field(field_name: str, data: bytes) -> Any:
    kind = "bad-config" if field_name == "config" else "bad-submission-json"
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise Problem(kind, f"{field_name} is nested too deeply to be valid") from None
    except (UnicodeDecodeError, ValueError) as exc:
        # ValueError also covers integers past Python's 4300-digit conversion limit.
        raise Problem(kind, f"{field_name} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise Problem(kind, f"{field_name} must be a JSON object, got {type(value).__name__}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise Problem(kind, f"{field_name} is nested more than {MAX_JSON_DEPTH} levels deep")
    return value


# Characters that make a name display as something it is not: bidirectional embeddings,
# overrides and isolates ("train_\u202eyp.py" shows as "train_py.py"), the implicit direction marks,
# and the Unicode line/paragraph separators.
MISLEADING_CHARS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                             "\u2028\u2029")


def has_control_chars(name: str) -> bool:
    """C0/C1 control characters, or the bidi controls and separators of MISLEADING_CHARS."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in MISLEADING_CHARS for c in name)


def check_utf8_source(store: BlobStore, f: "UploadedFile") -> None:
    """The training script must be UTF-8 text without NUL bytes, as CPython requires of a source
    file; it is read back in chunks through an incremental decoder (bounded memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(store.local_path(f.blob), "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise Problem("invalid-field", f"code ({f.filename}) is not UTF-8 text: undecodable byte at offset "
                              f"{offset + exc.start}", field="code") from None
            if b"\x00" in chunk:
                raise Problem("invalid-field", f"code ({f.filename}) contains NUL bytes; it is not a Python source "
                              "file", field="code")
            if not chunk:
                return
            offset += len(chunk)


class UploadParser:
    """Incremental multipart/form-data parser that writes file parts into blob storage."""

    def __init__(self, content_type: str, store: BlobStore, *, max_file_bytes: int, max_request_bytes: int,
                 browser_form: bool = False):
        ctype, params = parse_options_header(content_type)
        if ctype != b"multipart/form-data":
            raise Problem("unsupported-media-type",
                          f"send the submission as multipart/form-data, not {ctype.decode('latin-1') or 'no content type'}")
        boundary = params.get(b"boundary")
        if not boundary:
            raise Problem("invalid-request", "multipart/form-data without a boundary parameter")
        if len(boundary) > MAX_BOUNDARY:
            raise Problem("invalid-request", f"the multipart boundary is {len(boundary)} characters long; at most "
                          f"{MAX_BOUNDARY} are accepted (RFC 2046 allows 70)")
        self.store = store
        self.max_file = max_file_bytes
        self.max_request = max_request_bytes
        self.received = 0
        self.result = ParsedUpload()
        self._seen: set[str] = set()
        self._counts: dict[str, int] = {}
        self._writers: list[BlobWriter] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[str, bytes] = {}
        self._part: dict[str, Any] | None = None
        self._finished = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        })
        self._texts: dict[str, bytes] = {}
        self._text_names: dict[str, str] = {}  # the file name a text part came with ("" for none)
        self.ignored: list[str] = []  # bundle members skipped because their path escapes the folder
        self.browser_form = browser_form
        self._folder: list[tuple[str, StoredBlob]] = []  # (path in the folder, blob) of `folder` parts

    # -- callbacks ---------------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._part = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        disp, params = parse_options_header(self._headers.get("content-disposition", b""))
        if disp != b"form-data" or b"name" not in params:
            raise Problem("invalid-request", "a multipart part lacks Content-Disposition: form-data; name=...")
        name = params[b"name"].decode("utf-8", "replace")
        filename = params.get(b"filename")
        if self.browser_form and filename == b"" and (name in ALLOWED_FIELDS or name == FOLDER_FIELD):
            # A file input left empty: the field was not filled in (its data must be empty too).
            self._part = {"name": name, "unfilled": True}
            return
        if self.browser_form and name == FOLDER_FIELD:
            self._folder_part(filename)
            return
        if name not in ALLOWED_FIELDS:
            raise Problem("unknown-field", f"unknown form field {name!r}; allowed: {', '.join(ALLOWED_FIELDS)}")
        if name in self._seen and name not in REPEATABLE:
            raise Problem("invalid-field", f"form field {name!r} was sent more than once")
        self._seen.add(name)
        self._counts[name] = self._counts.get(name, 0) + 1
        cap = MAX_PARTS_PER_FIELD.get(name, 1)
        if self._counts[name] > cap:
            raise Problem("invalid-field", f"at most {cap} {name} parts are accepted in one upload; "
                          f"send the rest in a bundle or leave them out", field=name, limit_parts=cap)
        if sum(self._counts.values()) > MAX_PARTS:
            raise Problem("invalid-field", f"at most {MAX_PARTS} form parts are accepted in one upload",
                          limit_parts=MAX_PARTS)
        if name in FILE_FIELDS and filename is None:
            raise Problem("invalid-field", f"{name} must be a file upload (a part with a filename), not a text value")
        if name in TEXT_FIELDS and filename is not None:
            raise Problem("invalid-field", f"{name} must be a text value, not a file")
        fname = posixpath.basename((filename or b"").decode("utf-8", "replace").replace("\\", "/"))
        if has_control_chars(fname) or len(fname) > MAX_FILENAME:
            # Such names end up in logs, terminals and HTML; refuse them instead of guessing.
            raise Problem("invalid-field", f"the file name of {name} must be at most {MAX_FILENAME} characters "
                          f"without control characters or bidirectional-text controls, got {fname[:80]!r}; "
                          "rename the file", field=name)
        if filename is not None and name in FILE_FIELDS:
            writer = self.store.writer(min(self.max_file, self.max_request))
            self._writers.append(writer)
            self._part = {"name": name, "filename": fname or name, "writer": writer}
        else:
            self._part = {"name": name, "filename": fname, "buf": bytearray()}

    def _folder_part(self, filename: bytes | None) -> None:
        """One file of a folder chosen in a browser, checked like a bundle member."""
        self._counts[FOLDER_FIELD] = count = self._counts.get(FOLDER_FIELD, 0) + 1
        if filename is None:
            raise Problem("invalid-field", f"{FOLDER_FIELD} must be file uploads, not a text value", field=FOLDER_FIELD)
        if count > MAX_BUNDLE_MEMBERS:
            raise Problem("bad-bundle", f"the folder holds more than {MAX_BUNDLE_MEMBERS} files", field=FOLDER_FIELD)
        raw = filename.decode("utf-8", "replace")
        if has_control_chars(raw) or len(raw) > 1000:
            raise Problem("bad-bundle", f"the folder member {raw[:80]!r} has control characters, "
                          "bidirectional-text controls or a very long name", field=FOLDER_FIELD)
        rel = _safe_name(raw, self.ignored)
        if rel is None:  # OS clutter, or a path that leaves the folder: never stored
            self._part = {"name": FOLDER_FIELD, "skip": True}
            return
        writer = self.store.writer(min(self.max_file, self.max_request))
        self._writers.append(writer)
        self._part = {"name": FOLDER_FIELD, "filename": rel, "writer": writer, "member": True}

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part is None or part.get("skip"):
            return
        chunk = data[start:end]
        if part.get("unfilled"):
            if chunk:
                raise Problem("invalid-field", f"{part['name']} was sent without a file name; choose the file again",
                              field=part["name"])
            return
        if "writer" in part:
            try:
                part["writer"].write(chunk)
            except BlobTooLarge:
                raise Problem("payload-too-large",
                              f"{part['name']} ({part['filename']}) is larger than {self.max_file} bytes",
                              limit_bytes=self.max_file, field=part["name"]) from None
        else:
            part["buf"] += chunk
            if len(part["buf"]) > MAX_TEXT_FIELD:
                raise Problem("payload-too-large", f"{part['name']} is larger than {MAX_TEXT_FIELD} bytes",
                              limit_bytes=MAX_TEXT_FIELD, field=part["name"])

    def _on_part_end(self) -> None:
        part = self._part
        self._part = None
        if part is None:
            return
        name = part["name"]
        if part.get("skip") or part.get("unfilled"):
            return
        if part.get("member"):
            blob = part["writer"].finish(hold=True)
            self._writers.remove(part["writer"])
            self._stored(blob)
            self._folder.append((part["filename"], blob))
        elif "writer" in part:
            blob = part["writer"].finish(hold=True)
            self._writers.remove(part["writer"])
            self._stored(blob)
            if blob.size == 0 and name in ("artifact", "code", "bundle"):
                raise Problem("invalid-field", f"{name} ({part['filename']}) is empty")
            role = "log" if name == "logs" else name
            self.result.files.append(UploadedFile(role, part["filename"], blob))
        elif not (self.browser_form and not bytes(part["buf"]).strip()):  # an empty form field is unfilled
            self._texts[name] = bytes(part["buf"])
            self._text_names[name] = part["filename"]

    def _on_end(self) -> None:
        self._finished = True

    # -- driving -------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_request:
            raise Problem("payload-too-large", f"the request body is larger than {self.max_request} bytes",
                          limit_bytes=self.max_request)
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise Problem("invalid-request", f"the multipart body is malformed: {exc}") from None

    def finish(self) -> ParsedUpload:
        """Validate the parsed form (call after the body ended) and fold text fields in."""
        if not self._finished:
            raise Problem("invalid-request", "the multipart body ended before its closing boundary")
        r = self.result
        for name in JSON_FIELDS:
            if name in self._texts:
                self._set_json(name, self._texts[name])
        for f in [f for f in r.files if f.role in JSON_FIELDS]:
            self._set_json(f.role, self.store.local_path(f.blob).read_bytes())
        if "track" in self._texts:
            track = self._texts["track"].decode("utf-8", "replace").strip()
            if not track or len(track) > 100:
                raise Problem("invalid-field", "track must be 1 to 100 characters")
            r.track = track
        bundle = r.one("bundle")
        if self._counts.get(FOLDER_FIELD):
            if bundle is not None or r.one("artifact") or r.one("code"):
                raise Problem("invalid-field", "send a folder, a bundle, or artifact and code: one of them, not several",
                              field=FOLDER_FIELD)
            self._take_members(self._folder, "folder")
        if bundle is not None:
            if r.one("artifact") or r.one("code"):
                raise Problem("invalid-field", "send either bundle, or artifact and code, not both")
            self._unpack_bundle(bundle)
        for required in ("artifact", "code"):
            if r.one(required) is None:
                raise Problem("missing-field", f"the form field {required} (a file) is required"
                              + (" (or send a records folder as bundle)" if bundle is None else " in the bundle"),
                              field=required)
        check_utf8_source(self.store, r.one("code"))  # type: ignore[arg-type]
        if "config" in self._texts:
            # Last, so in the records folder it is written after (over) a bundle's own config
            # file, which the sent part overrides (the bundle's is kept as an extra file).
            self._keep_config(self._texts["config"], self._text_names.get("config", ""))
        return r

    def _set_json(self, name: str, data: bytes) -> None:
        value = parse_json_field(name, data)
        if name == "config":
            if self.result.config_raw is not None:
                raise Problem("invalid-field", "config was sent twice")
            self.result.config_raw = value
        else:
            self.result.submission_meta = value
            self.result.submission_json_text = data.decode("utf-8")

    def _keep_config(self, data: bytes, filename: str) -> None:
        """Store a config part as one of the submission's files, so it is listed with the others
        and a reviewer can open it. It is kept under the name a records folder reads a config by
        (the part's own name when it is one of CONFIG_NAMES, else eval.json), since the worker
        lays the files out as the folder the checks read."""
        writer = self.store.writer(MAX_TEXT_FIELD)
        self._writers.append(writer)
        writer.write(data)
        blob = writer.finish(hold=True)
        self._writers.remove(writer)
        self._stored(blob)
        self.result.files.append(UploadedFile("config", filename if filename in CONFIG_NAMES else CONFIG_NAMES[0], blob))

    def _stored(self, blob: StoredBlob) -> None:
        self.result.stored.append(blob)
        if blob.created:
            self.result.created.append(blob.sha256)

    def abort(self, referenced: Callable[[list[str]], set[str]]) -> None:
        """Undo: close open writers, drop this request's holds, and delete the blob files it
        created that no committed row references (another upload of the same bytes may have
        committed meanwhile; its file stays)."""
        for w in self._writers:
            w.abort()
        self._writers.clear()
        self.store.release(self.result.stored)
        self.result.stored.clear()
        self.store.remove_unreferenced(self.result.created, referenced)
        self.result.created.clear()

    # -- bundles -------------------------------------------------------------------------------
    def _unpack_bundle(self, bundle: UploadedFile) -> None:
        path = self.store.local_path(bundle.blob)
        # Everything an archive can hold counts against the request limit as it is *unpacked*
        # (plus room for tar headers), including members that are never stored.
        cap = self.max_request + (self.max_request // 8) + (1 << 20)
        with open(path, "rb") as fh:
            magic = fh.read(4)
            fh.seek(0)
            try:
                if magic[:2] == b"\x1f\x8b":
                    members = _tar_members(CappedReader(gzip.GzipFile(fileobj=fh, mode="rb"), cap), self.ignored)
                elif _is_tar(fh):
                    members = _tar_members(fh, self.ignored)
                elif magic == b"PK\x03\x04":
                    members = _zip_members(fh, self.max_request, self.ignored)
                else:
                    raise Problem("bad-bundle", "bundle must be a .tar.gz, .tar or .zip archive of a records folder")
                self._store_members(members)
            except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile,
                    NotImplementedError) as exc:
                raise Problem("bad-bundle", f"the bundle is not a readable archive: {str(exc)[:200]}") from None
            except RuntimeError as exc:  # zipfile: encrypted members
                raise Problem("bad-bundle", f"the bundle cannot be read: {str(exc)[:200]}") from None

    def _store_members(self, members: "MemberIter") -> None:
        total = 0
        entries: list[tuple[str, StoredBlob]] = []
        for count, (name, opener) in enumerate(members, start=1):
            if count > MAX_BUNDLE_MEMBERS:
                raise Problem("bad-bundle", f"the bundle holds more than {MAX_BUNDLE_MEMBERS} files")
            if has_control_chars(name) or len(name) > 1000:
                raise Problem("bad-bundle", f"the bundle member {name[:80]!r} has control characters, "
                              "bidirectional-text controls or a very long name")
            writer = self.store.writer(self.max_file)
            self._writers.append(writer)
            with opener() as src:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > self.max_request:
                        raise Problem("payload-too-large",
                                      f"the bundle unpacks to more than {self.max_request} bytes",
                                      limit_bytes=self.max_request)
                    try:
                        writer.write(chunk)
                    except BlobTooLarge:
                        raise Problem("payload-too-large", f"{name} in the bundle is larger than {self.max_file} bytes",
                                      limit_bytes=self.max_file) from None
            blob = writer.finish(hold=True)
            self._writers.remove(writer)
            self._stored(blob)
            entries.append((name, blob))
        self._take_members(entries, "bundle")

    def _take_members(self, entries: list[tuple[str, StoredBlob]], what: str) -> None:
        """The files of a records folder (a bundle's members or a chosen folder's files) by role."""
        r = self.result
        if not entries:
            raise Problem("bad-bundle", f"the {what} is empty" + self._ignored_note())
        # A records folder is usually archived (or chosen) with its folder as the single top-level entry.
        tops = {n.split("/", 1)[0] for n, _ in entries}
        if len(tops) == 1 and all("/" in n for n, _ in entries):
            r.folder = tops.pop()[:300]
            entries = [(n.split("/", 1)[1], b) for n, b in entries]
        self._classify(entries, what)

    def _ignored_note(self) -> str:
        if not self.ignored:
            return ""
        names = ", ".join(repr(n) for n in self.ignored[:3])
        return f" (ignored {len(self.ignored)} member(s) whose path leaves the folder: {names})"

    def _classify(self, entries: list[tuple[str, StoredBlob]], what: str = "bundle") -> None:
        r = self.result
        artifacts = [(n, b) for n, b in entries if n.endswith(ARTIFACT_SUFFIXES) or posixpath.basename(n).startswith("final_model")]
        if len(artifacts) != 1:
            found = ", ".join(n for n, _ in artifacts) or "none"
            raise Problem("bad-bundle", f"the {what} must hold exactly one artifact (*.ptz); found {found}"
                          + self._ignored_note())
        codes = [(n, b) for n, b in entries if posixpath.basename(n) == "train_gpt.py"]
        if not codes:
            py = [(n, b) for n, b in entries if n.endswith(".py")]
            codes = py if len(py) == 1 else []
        if len(codes) != 1:
            raise Problem("bad-bundle", f"the {what} must hold the training script train_gpt.py" + self._ignored_note())
        used = {artifacts[0][0], codes[0][0]}
        r.files.append(UploadedFile("artifact", posixpath.basename(artifacts[0][0]), artifacts[0][1]))
        r.files.append(UploadedFile("code", posixpath.basename(codes[0][0]), codes[0][1]))
        for n, b in entries:
            if n in used:
                continue
            base = posixpath.basename(n)
            if base == "submission.json" and r.submission_meta is None:
                self._set_json("submission_json", self.store.local_path(b).read_bytes())
                role = "submission_json"
            elif base in CONFIG_NAMES and r.config_raw is None:
                self._set_json("config", self.store.local_path(b).read_bytes())
                role = "config"
            elif base.endswith((".log", ".txt")) and base != "requirements.txt":
                role = "log"
            else:
                role = "extra"
            r.files.append(UploadedFile(role, n[:255], b))


MemberIter = Any  # iterator of (relative name, opener returning a binary stream)


def _is_tar(fh: BinaryIO) -> bool:
    fh.seek(257)
    ok = fh.read(5) == b"ustar"
    fh.seek(0)
    return ok


class CappedReader(io.RawIOBase):
    """A read-only stream that refuses to deliver more than `cap` bytes (decompression bombs)."""

    def __init__(self, inner: Any, cap: int):
        self._inner, self._cap, self.delivered = inner, cap, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = (1 << 20) if n is None or n < 0 else n
        data = self._inner.read(min(want, self._cap - self.delivered + 1))
        self.delivered += len(data)
        if self.delivered > self._cap:
            raise Problem("payload-too-large", f"the bundle unpacks to more than {self._cap} bytes",
                          limit_bytes=self._cap)
        return data  # type: ignore[no-any-return]

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _unsafe(why: str, name: str) -> Problem:
    return Problem("bad-bundle", f"the bundle member {name[:120]!r} {why}; a records folder holds plain files only")


def _safe_name(name: str, ignored: list[str] | None = None) -> str | None:
    """The member's path inside the folder, or None for members that are skipped: OS clutter, and
    paths that would escape the folder (`..`, absolute). Escapes are never written anywhere; their
    names are kept in `ignored` so an error about the bundle can say what was left out."""
    raw = name
    name = name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or any(p == ".." for p in parts):
        if ignored is not None:
            ignored.append(raw[:120])
        return None
    if not parts:
        return None
    if parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store":
        return None
    return "/".join(parts)


def _tar_members(fh: Any, ignored: list[str]) -> MemberIter:
    # Stream mode ("r|"): one forward pass, no seeking back through a compressed stream.
    tf = tarfile.open(fileobj=fh, mode="r|")
    for m in tf:
        if m.issym() or m.islnk():
            raise _unsafe(f"is a {'symbolic' if m.issym() else 'hard'} link (to {m.linkname[:80]!r})", m.name)
        if m.isdir():
            continue
        if not m.isreg():
            raise _unsafe("is a device, FIFO or other special file", m.name)
        name = _safe_name(m.name, ignored)
        if name is None:
            continue
        yield name, _tar_opener(tf, m)


def _tar_opener(tf: tarfile.TarFile, m: tarfile.TarInfo) -> Callable[[], Any]:
    def _open() -> Any:
        f = tf.extractfile(m)
        return f if f is not None else io.BytesIO(b"")
    return _open


def _zip_members(fh: BinaryIO, max_total: int, ignored: list[str]) -> MemberIter:
    zf = zipfile.ZipFile(fh)
    infos = zf.infolist()
    if len(infos) > MAX_BUNDLE_MEMBERS:
        raise Problem("bad-bundle", f"the bundle holds {len(infos)} entries; at most {MAX_BUNDLE_MEMBERS} are allowed")
    declared = sum(i.file_size for i in infos)
    if declared > max_total:
        # A zip bomb announces itself in the central directory; refuse before inflating a byte.
        raise Problem("payload-too-large", f"the bundle declares {declared} unpacked bytes, more than {max_total}",
                      limit_bytes=max_total)
    for info in infos:
        kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
        if kind == stat.S_IFLNK:
            raise _unsafe("is a symbolic link", info.filename)
        if kind not in _ZIP_TYPE_OK:
            raise _unsafe("is a device, FIFO or other special file", info.filename)
        if info.is_dir():
            continue
        name = _safe_name(info.filename, ignored)
        if name is None:
            continue
        yield name, (lambda info=info: zf.open(info))
