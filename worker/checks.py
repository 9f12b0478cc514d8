"""The rules the pipeline runs, in two plain functions: before evaluation and after scoring.

`run_check_rules` (CPU, the `checks` queue): config legality, the size cap, artifact decoding and
validation against the config, and the static rules of `gepa.compliance`. Any `fail` rejects
the submission with that rule's message. `run_score_rules` (after the evaluation): reproduction
of the claimed BPB. Both return `RuleOutcome`s; adapting to changes in `gepa.compliance` happens
here and nowhere else.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from api.lifecycle import RuleOutcome

log = logging.getLogger("golfcheck.checks")

HOSTILE_PARSE_ERRORS = ("RecursionError", "MemoryError", "too many nested", "too many levels of indentation",
                        "too many statically nested", "null bytes")


@dataclass
class CheckInputs:
    artifact_path: Path
    code_path: Path
    config_json: str
    submission_json: str | None
    track: str
    cap_bytes: int
    log_paths: list[Path] = field(default_factory=list)
    # The artifact may not inflate past this while it is read (decompression bombs).
    max_decompressed_bytes: int = 256 * 2**20


class CheckOutput(NamedTuple):
    outcomes: list[RuleOutcome]
    counted_bytes: int                # code + artifact bytes as stored, what the cap counts
    family: tuple[str, str] | None    # (name, title) of the detected model family; None if unreadable


def run_check_rules(inp: CheckInputs) -> CheckOutput:
    """Outcomes, counted bytes and the family. Raises only for platform faults."""
    from gepa import runner
    from gepa.errors import ArtifactError, ConfigError
    from gepa.sizes import size_report

    outcomes: list[RuleOutcome] = []
    prep, artifact_error = None, None
    try:
        prep = runner.prepare(inp.artifact_path, inp.config_json or None,
                              max_decompressed_bytes=inp.max_decompressed_bytes)
        outcomes.append(RuleOutcome("config.legal", "pass", f"{prep.family.name} family, evaluation mode {prep.cfg.mode}",
                                    title="Evaluation config is legal"))
    except ConfigError as exc:
        outcomes.append(RuleOutcome("config.legal", "fail", exc.message, title="Evaluation config is legal",
                                    kind=exc.kind))
    except ArtifactError as exc:
        artifact_error = exc
        outcomes.append(RuleOutcome("config.legal", "skip", "not checked: the artifact could not be read",
                                    title="Evaluation config is legal"))

    code = inp.code_path.read_bytes()
    report = size_report(code, inp.artifact_path.stat().st_size, cap=inp.cap_bytes)
    if report.within_cap:
        outcomes.append(RuleOutcome("size.cap", "pass", f"{report.total_bytes} bytes, {report.headroom_bytes} under the cap",
                                    title="Code + artifact within the cap", evidence=report.to_dict()))
    else:
        outcomes.append(RuleOutcome(
            "size.cap", "fail",
            f"code ({report.code_bytes} bytes) + artifact ({report.artifact_bytes} bytes) = {report.total_bytes} bytes "
            f"is {-report.headroom_bytes} bytes over the {report.cap_bytes}-byte cap",
            title="Code + artifact within the cap", evidence=report.to_dict(), kind="over-cap"))

    if artifact_error is not None:
        outcomes.append(RuleOutcome("artifact.valid", "fail", artifact_error.message,
                                    title="Artifact decodes and matches the config", kind=artifact_error.kind))
    elif prep is None:
        outcomes.append(RuleOutcome("artifact.valid", "skip", "not checked: the config is not legal",
                                    title="Artifact decodes and matches the config"))
    else:
        outcomes.append(RuleOutcome("artifact.valid", "pass",
                                    f"artifact decodes as the {prep.family.name} family ({prep.family.title}) "
                                    "and matches the model config",
                                    title="Artifact decodes and matches the config",
                                    evidence={"family": prep.family.name, "family_title": prep.family.title,
                                              "artifact_bytes": report.artifact_bytes}))

    outcomes.extend(static_code_rules(code, inp))
    family = (prep.family.name, prep.family.title) if prep is not None else None
    return CheckOutput(outcomes, report.total_bytes, family)


def static_code_rules(code: bytes, inp: CheckInputs) -> list[RuleOutcome]:
    """Static review of train_gpt.py by `gepa.compliance` (read as text; never imported or run).

    One outcome per code rule: `fail` for an error-severity finding (the training script does
    something the challenge forbids, so its artifact cannot stand), `warn` for a warning rule,
    `pass` otherwise. A reviewer can override a result; the evidence names file and line."""
    try:
        from gepa.compliance.review import CODE_RULES, RULE_TEXT, WARNING_RULES, scan_code
    except ImportError:
        return [RuleOutcome("compliance.static", "skip", "static code review is not available in this build")]
    try:
        report = scan_code(code.decode("utf-8", "replace"), filename=inp.code_path.name
                           if inp.code_path.name.endswith(".py") else "train_gpt.py")
    except Exception as exc:  # noqa: BLE001 - a crashing analyser must not reject or fail the submission
        log.warning("static code review raised %s: %s", type(exc).__name__, exc)
        return [RuleOutcome("compliance.static", "warn", f"static review could not run: {type(exc).__name__}")]
    out: list[RuleOutcome] = []
    if report.parse_errors:
        message = "; ".join(report.parse_errors.values())
        # Syntax this Python does not know (a newer release) only warns; a script nested past the
        # interpreter's own limits cannot have run at all, so it cannot stand behind an artifact.
        hostile = any(m in message for m in HOSTILE_PARSE_ERRORS)
        out.append(RuleOutcome("code.parse", "fail" if hostile else "warn",
                               ("train_gpt.py cannot be compiled by Python: " if hostile else "") + message,
                               title="Training script parses", evidence=report.parse_errors,
                               kind="code-unparseable" if hostile else None))
    for rule in CODE_RULES:
        hits = [f for f in report.findings if f.rule == rule]
        title = RULE_TEXT.get(rule, rule)
        if not hits:
            status = "skip" if report.parse_errors else "pass"
            out.append(RuleOutcome(rule, status, "no finding" if status == "pass" else "not checked", title=title))
            continue
        status = "warn" if rule in WARNING_RULES else "fail"
        where = ", ".join(f"{f.file}:{f.line}" for f in hits[:5])
        out.append(RuleOutcome(rule, status, f"{hits[0].message} ({where})", title=title,
                               evidence=[f.to_dict() for f in hits], kind=f"rule:{rule}" if status == "fail" else None))
    return out


def claimed_numbers(submission_json: str | None) -> dict[str, float | None]:
    if not submission_json:
        return {"val_bpb": None, "val_loss": None}
    try:
        raw = json.loads(submission_json)
    except ValueError:
        return {"val_bpb": None, "val_loss": None}

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return {"val_bpb": num(raw.get("val_bpb")), "val_loss": num(raw.get("val_loss"))}


def run_score_rules(*, measured_bpb: float, claimed_bpb: float | None, tolerance: float,
                    max_val_tokens: int | None) -> list[RuleOutcome]:
    """Reproduction: the measured BPB must match the claim within `tolerance` (when there is a
    claim, and only on the full validation set: a truncated run is not comparable)."""
    title = "Measured BPB reproduces the claimed BPB"
    if claimed_bpb is None:
        return [RuleOutcome("reproduction", "skip", "no val_bpb claimed in submission.json", title=title)]
    if max_val_tokens is not None:
        return [RuleOutcome("reproduction", "skip",
                            f"validation truncated to {max_val_tokens} tokens; not comparable with the claim",
                            title=title, evidence={"measured": measured_bpb, "claimed": claimed_bpb})]
    delta = measured_bpb - claimed_bpb
    evidence = {"measured": measured_bpb, "claimed": claimed_bpb, "delta": delta, "tolerance": tolerance}
    if abs(delta) <= tolerance:
        return [RuleOutcome("reproduction", "pass", f"measured {measured_bpb:.5f} vs claimed {claimed_bpb:.5f}",
                            title=title, evidence=evidence)]
    return [RuleOutcome("reproduction", "fail",
                        f"measured {measured_bpb:.5f} differs from claimed {claimed_bpb:.5f} by {delta:+.5f} "
                        f"(tolerance {tolerance})", title=title, evidence=evidence, kind="not-reproduced")]
