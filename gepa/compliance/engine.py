"""The rule engine: rule definitions, results with evidence, and the aggregated verdict.

A rule is a small function `fn(ctx) -> RuleResult` registered with an id, a one-line
description and a severity (`error` rules fail, `warning` rules can at most warn). The engine
never lets one rule's crash take the verdict down: an unexpected exception becomes a `warn`
result that names the exception, so a malformed folder always yields a complete verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from gepa.compliance.policy import RULESET_VERSION

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STATUSES = (PASS, WARN, FAIL, SKIP)
_RANK = {SKIP: 0, PASS: 1, WARN: 2, FAIL: 3}


@dataclass(frozen=True)
class Evidence:
    """One observation behind a result: where, what was seen, and what it was compared to."""

    message: str
    file: str | None = None
    line: int | None = None
    value: Any = None
    limit: Any = None


@dataclass
class RuleResult:
    rule: str
    status: str
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    severity: str = "error"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = [{k: v for k, v in asdict(e).items() if v is not None} for e in self.evidence]
        return d


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    severity: str  # "error": a violation fails; "warning": a violation warns
    fn: Callable[[Any], RuleResult]

    def run(self, ctx: Any) -> RuleResult:
        try:
            res = self.fn(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            res = RuleResult(self.id, WARN, f"rule could not run: {type(exc).__name__}: {exc}")
        res.rule = self.id
        res.description = self.description
        res.severity = self.severity
        if self.severity == "warning" and res.status == FAIL:
            res.status = WARN  # a warning-level rule never fails a verdict
        return res


def result(status: str, summary: str, evidence: Iterable[Evidence] = ()) -> RuleResult:
    """Build a result; the rule id is filled in by `Rule.run`."""
    assert status in STATUSES, status
    return RuleResult(rule="", status=status, summary=summary, evidence=list(evidence))


@dataclass
class Verdict:
    """All rule results for one submission plus the rule-set version that produced them."""

    ruleset: str
    folder: str | None
    results: list[RuleResult]

    @property
    def status(self) -> str:
        worst = max((r.status for r in self.results), key=_RANK.__getitem__, default=PASS)
        return PASS if worst == SKIP else worst

    @property
    def passed(self) -> bool:
        return self.status != FAIL

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for r in self.results:
            out[r.status] += 1
        return out

    def get(self, rule_id: str) -> RuleResult | None:
        return next((r for r in self.results if r.rule == rule_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "folder": self.folder,
            "status": self.status,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
        }


def run_rules(rules: Iterable[Rule], ctx: Any, folder: str | Path | None = None) -> Verdict:
    return Verdict(RULESET_VERSION, str(folder) if folder is not None else None, [r.run(ctx) for r in rules])
