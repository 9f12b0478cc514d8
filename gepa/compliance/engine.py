"""The rule engine: rule definitions, results with evidence, and the aggregated verdict.

A rule is a small function `fn(ctx) -> RuleResult` registered with an id, a one-line
description, a severity (`error` rules fail, `warning` rules can at most warn) and a stage
(`checks`: files only, before any evaluation; `score`: needs the measured result). The engine
never lets one rule's crash take the verdict down: an unexpected exception becomes a `warn`
result that names the exception, so a malformed folder always yields a complete verdict.

This is the only rule engine: `golfcheck check`, the service's worker and ingest all run the
rules registered in `gepa.compliance.rules` through `run_rules`, and store or print the same
`RuleResult`s. `final_verdict` turns them into the one published label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from gepa.compliance.policy import RULESET_VERSION

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
STATUSES = (PASS, WARN, FAIL, SKIP)
STAGE_CHECKS, STAGE_SCORE = "checks", "score"
# The published verdict: `pass` only with a reproduced number on the canonical validation set.
VERDICT_PASS, VERDICT_FAIL, VERDICT_UNVERIFIED = "pass", "fail", "unverified"
# Rules whose `pass` a verified result needs (the number is real and was measured on the full set).
REQUIRED_FOR_PASS = ("data.canonical", "repro.bpb")
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
    stage: str = STAGE_CHECKS
    kind: str | None = None  # for failures: a stable machine-readable reason (bad-config, over-cap, ...)

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
    stage: str = STAGE_CHECKS

    def run(self, ctx: Any) -> RuleResult:
        try:
            res = self.fn(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others
            res = RuleResult(self.id, WARN, f"rule could not run: {type(exc).__name__}: {exc}")
        res.rule = self.id
        res.description = self.description
        res.severity = self.severity
        res.stage = self.stage
        if self.severity == "warning" and res.status == FAIL:
            res.status = WARN  # a warning-level rule never fails a verdict
        if res.status == FAIL and not res.kind:
            res.kind = f"rule:{self.id}"
        elif res.status != FAIL:
            res.kind = None
        return res


def result(status: str, summary: str, evidence: Iterable[Evidence] = (), kind: str | None = None) -> RuleResult:
    """Build a result; the rule id is filled in by `Rule.run`."""
    assert status in STATUSES, status
    return RuleResult(rule="", status=status, summary=summary, evidence=list(evidence), kind=kind)


def final_verdict(results: Iterable[RuleResult]) -> str:
    """`fail` if any rule failed; `pass` only if every rule in REQUIRED_FOR_PASS passed (the number
    was measured on the canonical validation set and reproduces the claim); else `unverified`."""
    results = list(results)
    if any(r.status == FAIL for r in results):
        return VERDICT_FAIL
    passed = {r.rule for r in results if r.status == PASS}
    return VERDICT_PASS if all(rid in passed for rid in REQUIRED_FOR_PASS) else VERDICT_UNVERIFIED


@dataclass
class Verdict:
    """All rule results for one submission plus the rule-set version that produced them."""

    ruleset: str
    folder: str | None
    results: list[RuleResult]
    facts: dict[str, Any] = field(default_factory=dict)  # numbers the service stores (counted_bytes, ...)

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

    @property
    def verdict(self) -> str:
        return final_verdict(self.results)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "folder": self.folder,
            "status": self.status,
            "verdict": self.verdict,
            "counts": self.counts(),
            "facts": dict(self.facts),
            "results": [r.to_dict() for r in self.results],
        }


def run_rules(rules: Iterable[Rule], ctx: Any, folder: str | Path | None = None, stages: Iterable[str] | None = None) -> Verdict:
    """Run `rules` (only those of `stages`, when given) on one context, in order."""
    wanted = set(stages) if stages is not None else None
    results = [r.run(ctx) for r in rules if wanted is None or r.stage in wanted]
    facts = dict(getattr(ctx, "facts", {}) or {})
    return Verdict(RULESET_VERSION, str(folder) if folder is not None else None, results, facts)
