"""What an upload hands the core: the files it stored (as blobs) and its parsed form fields.

The HTTP layer (api.http.uploads) streams and parses the multipart body into a `ParsedUpload`;
`api.core.crud.create_submission` turns one into a submission. Nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from api.core.storage import StoredBlob


@dataclass
class UploadedFile:
    role: str          # artifact | code | config | submission_json | log | bundle | extra
    filename: str
    blob: StoredBlob


@dataclass
class ParsedUpload:
    files: list[UploadedFile] = field(default_factory=list)
    config_raw: Any = None             # parsed JSON object, or None (defaults)
    submission_meta: dict[str, Any] | None = None
    submission_json_text: str | None = None
    track: str | None = None
    folder: str | None = None
    created: list[str] = field(default_factory=list)  # sha256 of blob files this request created
    stored: list[StoredBlob] = field(default_factory=list)  # every blob this request stored (with its hold)

    def one(self, role: str) -> UploadedFile | None:
        return next((f for f in self.files if f.role == role), None)

    @property
    def config_canonical(self) -> str:
        return canonical_json(self.config_raw if self.config_raw is not None else {})


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
