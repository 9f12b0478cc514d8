"""Submission size accounting: code bytes (UTF-8) + compressed artifact bytes ≤ 16,000,000."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SIZE_CAP_BYTES = 16_000_000


@dataclass(frozen=True)
class SizeReport:
    code_bytes: int
    artifact_bytes: int
    total_bytes: int
    cap_bytes: int
    headroom_bytes: int   # negative when over the cap
    within_cap: bool

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def size_report(code: bytes | str, artifact_bytes: int, cap: int = SIZE_CAP_BYTES) -> SizeReport:
    code_bytes = len(code) if isinstance(code, (bytes, bytearray)) else len(code.encode("utf-8"))
    total = code_bytes + int(artifact_bytes)
    return SizeReport(code_bytes, int(artifact_bytes), total, cap, cap - total, total <= cap)
